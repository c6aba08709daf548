"""Custody of per-card secrets (PIN, PUK, management key), encrypted with AES-GCM at rest.

Each secret is bound to its card, attempt and kind through the AES-GCM associated data, so a row
copied onto another card or kind fails to decrypt. Secrets are never logged.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from tasks.cardsdk.piv.errors import CustodyError
from tasks.cardsdk.records import CustodyRelease, CustodySecret
from tasks.store import utcnow

KEY_FILE = "custody.key"
KINDS = ("pin", "puk", "management_key")


def load_or_create_key(instance_path: Path) -> bytes:
    """The custody key from ``instance_path/custody.key``; created (32 random bytes, 0600) if absent."""
    path = Path(instance_path) / KEY_FILE
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_bytes()
        if len(key) != 32:
            raise ValueError(f"{path} does not hold a 32-byte custody key") from None
        return key
    key = AESGCM.generate_key(bit_length=256)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key)
    return key


def key_from_config(value: str) -> bytes:
    """A custody key given in configuration as base64 (16, 24 or 32 bytes)."""
    try:
        key = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the configured custody key is not valid base64") from None
    if len(key) not in (16, 24, 32):
        raise ValueError("the configured custody key must decode to 16, 24 or 32 bytes")
    return key


class Custody:
    """Encrypted storage of card secrets, one row per (card, attempt, kind)."""

    def __init__(self, sessions: sessionmaker, key: bytes) -> None:
        """Use ``sessions`` for the rows and ``key`` (AES-128/192/256) to seal them."""
        self.sessions = sessions
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        """Never show the key."""
        return "Custody(<sealed>)"

    @staticmethod
    def _context(card_id: int, attempt_ref: str, kind: str) -> bytes:
        """Associated data tying a ciphertext to its card, attempt and kind."""
        return f"{card_id}\x1f{attempt_ref}\x1f{kind}".encode()

    def store(self, card_id: int, attempt_ref: str, secrets: dict[str, str]) -> None:
        """Seal and store ``secrets`` (kind -> value) for one attempt, in a transaction of its own."""
        with self.sessions.begin() as session:
            self.store_in(session, card_id, attempt_ref, secrets)

    def store_in(self, session: Session, card_id: int, attempt_ref: str, secrets: dict[str, str]) -> None:
        """Seal and store ``secrets`` in ``session``'s transaction: the encoder stores a card's
        secrets in the transaction that records its certificates (one commit a card fewer)."""
        rows = []
        for kind, value in secrets.items():
            if kind not in KINDS:
                raise ValueError(f"unknown secret kind {kind!r}")
            nonce = os.urandom(12)
            sealed = self._aead.encrypt(nonce, value.encode(), self._context(card_id, attempt_ref, kind))
            rows.append({"card_id": card_id, "attempt_ref": attempt_ref, "kind": kind, "nonce": nonce,
                         "ciphertext": sealed})
        # One INSERT of plain rows: this is on every encoded card's path.
        session.connection().execute(_INSERT_SECRETS, rows)

    def release(self, card_id: int, attempt_ref: str | None = None, actor: str = "custody") -> dict[str, str]:
        """Decrypt the PIN and PUK of ``attempt_ref`` (default: the card's latest attempt); the
        release is recorded with ``actor`` (never the values)."""
        return self._open(card_id, attempt_ref, ("pin", "puk"), actor)

    def release_once(self, card_id: int, actor: str) -> dict[str, str]:
        """Give out the PIN and PUK of the card's latest attempt for good (a PIN letter): marked
        released and their ciphertexts erased in the transaction that records the release, so no
        later request can show them again. A second request, even racing the first, gets a
        CustodyError: the UPDATE that marks them only takes rows nobody released yet."""
        kinds = ("pin", "puk")
        with self.sessions.begin() as session:
            attempt = session.scalar(
                select(CustodySecret.attempt_ref)
                .where(CustodySecret.card_id == card_id, CustodySecret.kind == "pin")
                .order_by(CustodySecret.created_at.desc(), CustodySecret.id.desc()).limit(1))
            if attempt is None:
                raise CustodyError(f"Custody holds no PIN of card {card_id}: the card was not encoded.")
            of_attempt = (CustodySecret.card_id == card_id, CustodySecret.attempt_ref == attempt,
                          CustodySecret.kind.in_(kinds))
            unreleased = (*of_attempt, CustodySecret.released_at.is_(None))
            taken = session.execute(update(CustodySecret).where(*unreleased)
                                    .values(released_at=utcnow())).rowcount
            if taken != len(kinds):
                release = session.scalar(select(CustodyRelease).where(
                    CustodyRelease.card_id == card_id, CustodyRelease.attempt_ref == attempt)
                    .order_by(CustodyRelease.id.desc()).limit(1))
                raise CustodyError(_already_released(card_id, release))
            found = {row.kind: self._decrypt(card_id, attempt, row)
                     for row in session.scalars(select(CustodySecret).where(*of_attempt))}
            session.execute(update(CustodySecret).where(*of_attempt).values(ciphertext=b""))
            session.add(CustodyRelease(card_id=card_id, attempt_ref=attempt, kinds=",".join(kinds),
                                       released_by=actor[:100]))
        return {**found, "attempt_ref": attempt}

    def management_key(self, card_id: int, attempt_ref: str | None = None, actor: str = "custody") -> bytes:
        """The card's management key (to wipe or re-personalise a card); recorded like a release."""
        return bytes.fromhex(self._open(card_id, attempt_ref, ("management_key",), actor)["management_key"])

    def _open(self, card_id: int, attempt_ref: str | None, kinds: tuple[str, ...],
              actor: str) -> dict[str, str]:
        """Decrypt ``kinds`` of one attempt and record, in the same transaction, that they were
        released (nothing is recorded when they cannot be); the result also names the attempt."""
        with self.sessions.begin() as session:
            if attempt_ref is None:
                attempt_ref = session.scalar(
                    select(CustodySecret.attempt_ref)
                    .where(CustodySecret.card_id == card_id)
                    .order_by(CustodySecret.created_at.desc(), CustodySecret.id.desc())
                    .limit(1)
                )
                if attempt_ref is None:
                    raise CustodyError(f"Custody holds no secrets for card {card_id}.")
            rows = session.scalars(
                select(CustodySecret).where(
                    CustodySecret.card_id == card_id,
                    CustodySecret.attempt_ref == attempt_ref,
                    CustodySecret.kind.in_(kinds),
                )
            ).all()
            if any(row.released_at is not None for row in rows):
                raise CustodyError(_already_released(card_id, None))
            found = {"attempt_ref": attempt_ref}
            for row in rows:
                found[row.kind] = self._decrypt(card_id, attempt_ref, row)
            missing = [kind for kind in kinds if kind not in found]
            if missing:
                raise CustodyError(f"Custody lacks the {', '.join(missing)} of card {card_id}.")
            session.add(CustodyRelease(card_id=card_id, attempt_ref=attempt_ref, kinds=",".join(kinds),
                                       released_by=actor[:100]))
        return found

    def _decrypt(self, card_id: int, attempt_ref: str, row: CustodySecret) -> str:
        """One secret's plain text; a wrong key or a tampered record is a CustodyError."""
        try:
            context = self._context(card_id, attempt_ref, row.kind)
            plain = self._aead.decrypt(row.nonce, row.ciphertext, context)
        except InvalidTag:
            raise CustodyError(
                f"Custody could not decrypt the {row.kind} of card {card_id}: wrong custody key or "
                "tampered record."
            ) from None
        return plain.decode()


def _already_released(card_id: int, release: CustodyRelease | None) -> str:
    """What a second request for a released PIN and PUK is told."""
    when = f" on {release.released_at:%Y-%m-%d %H:%M} UTC by {release.released_by}" if release else ""
    return (f"The PIN and PUK of card {card_id} were already given out{when} (PIN letter) and are not kept; "
            "they cannot be shown again. Withdraw the card to give it fresh keys and PIN.")


_INSERT_SECRETS = insert(CustodySecret.__table__)
