"""Signed chain heads: an Ed25519 key kept outside the database signs the chain's last entry.

The hash chain alone shows an edit, but someone who can write the database could rewrite every
entry after the one they changed, or cut off the newest entries, and leave a chain that checks
out. A signed head (entry id and hash) pins the chain up to that entry: verify needs only the
public key, and no database rights forge a signature. The private key is a 0600 PEM file (the
instance folder's ``audit_signing_key`` unless ``CARDFLOW_AUDIT_KEY`` names another path); the
public key sits next to it as ``<key>.pub`` (0644), so verifiers need no secret.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.config import Settings
from engine.store import AuditEvent, AuditHead

KEY_FILE = "audit_signing_key"
# Signatures are over this tag and the head's fields, so they mean nothing in any other context.
PAYLOAD_TAG = "cardflow audit head v1"
REASON_LENGTH = 200  # AuditHead.reason


class AuditKeyError(Exception):
    """The signing or verifying key cannot be used; the message names the file and the fix."""


def key_path(settings: Settings) -> Path:
    """Where the private signing key of ``settings`` lives."""
    return settings.audit_key_path or settings.instance_path / KEY_FILE


def public_key_path(private_path: Path) -> Path:
    """The public key file next to the private key file."""
    return private_path.with_name(private_path.name + ".pub")


def key_id(public_key: Ed25519PublicKey) -> str:
    """The sha256 of the raw public key: which key signed a head."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def head_payload(entry_id: int, entry_hash: str, signed_at: datetime, reason: str) -> bytes:
    """The canonical bytes a head's signature covers (the time in UTC, to the microsecond)."""
    moment = signed_at.replace(tzinfo=UTC) if signed_at.tzinfo is None else signed_at.astimezone(UTC)
    return json.dumps([PAYLOAD_TAG, entry_id, entry_hash, moment.isoformat(timespec="microseconds"), reason],
                      separators=(",", ":"), ensure_ascii=False).encode()


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Write ``path`` whole or not at all; a file another process made first is kept."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.chmod(temporary, mode)  # the umask may have narrowed the public key's 0644
        os.link(temporary, path)
    except FileExistsError:
        pass
    finally:
        temporary.unlink(missing_ok=True)


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """The private key at ``path``, created (0600, with its 0644 ``.pub``) on first use."""
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        _write_new(path, pem, 0o600)
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise AuditKeyError(f"the audit signing key {path} can be read or written by others; "
                            f"make it private with: chmod 600 {path}")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as error:
        raise AuditKeyError(f"{path} is not an unencrypted PEM private key ({error}); "
                            "point CARDFLOW_AUDIT_KEY at the audit signing key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise AuditKeyError(f"{path} is not an Ed25519 key; audit heads are signed with Ed25519")
    public = public_key_path(path)
    if not public.exists():
        _write_new(public, key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo), 0o644)
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The Ed25519 public key in the PEM file ``path``."""
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except FileNotFoundError:
        raise AuditKeyError(f"no public key at {path}; it is written next to the signing key when the "
                            "first head is signed ('cardflow audit sign')") from None
    except ValueError as error:
        raise AuditKeyError(f"{path} is not a PEM public key ({error})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise AuditKeyError(f"{path} is not an Ed25519 public key")
    return key


class HeadSigner:
    """Signs chain heads with one private key; build it once (``from_settings``) and keep it."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        """A signer for ``private_key``."""
        self.private_key = private_key
        self.key_id = key_id(private_key.public_key())

    @classmethod
    def from_settings(cls, settings: Settings) -> HeadSigner:
        """The signer of the configured key, created on first use."""
        return cls(load_or_create_key(key_path(settings)))

    def sign(self, session: Session, reason: str) -> AuditHead | None:
        """Sign the chain's last entry in ``session``'s transaction; see ``sign_head``."""
        return sign_head(session, self, reason)


def sign_head(session: Session, signer: HeadSigner, reason: str) -> AuditHead | None:
    """Add a signed head for the chain's last entry (this session's own entries included) and
    return it, or None while the trail is empty. Only ever inserts."""
    session.flush()  # number and link this transaction's pending entries first: they are signed too
    last = session.execute(select(AuditEvent.id, AuditEvent.hash).order_by(AuditEvent.id.desc())
                           .limit(1)).first()
    if last is None:
        return None
    reason = reason[:REASON_LENGTH]
    signed_at = datetime.now(UTC)
    signature = signer.private_key.sign(head_payload(last.id, last.hash, signed_at, reason))
    head = AuditHead(entry_id=last.id, hash=last.hash, signed_at=signed_at, reason=reason,
                     key_id=signer.key_id, signature=base64.b64encode(signature).decode())
    session.add(head)
    session.flush()
    return head
