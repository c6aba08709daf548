"""The certificate authority behind the encoder: an interface, and a local CA on ``cryptography``.

An external CA replaces ``LocalCA`` by implementing ``CertificateAuthority`` (docs/PKI.md says
what an EJBCA or a Microsoft CA adaptor does). The local CA keeps its key encrypted in the
instance folder, issues after the certificate profiles of ``tasks.cardsdk.pki_config``, records
every issuance (so certificates of a spoiled attempt can be revoked), and publishes its CRL in
the database on every revocation, for the console to serve at /pki/crl.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from tasks.cardsdk import pki_config
from tasks.cardsdk.crl import revoked_entries, sign_crl
from tasks.cardsdk.piv.errors import CaRefusedError
from tasks.cardsdk.pki_config import (  # noqa: F401  (re-exported: the OIDs callers know from here)
    ID_MS_SMARTCARD_LOGON,
    ID_PIV_CARD_AUTH,
    ID_PIV_CONTENT_SIGNING,
    ID_PIV_FASCN,
    CertificateProfile,
    PkiConfig,
)
from tasks.cardsdk.pki_records import PublishedCrl
from tasks.cardsdk.records import CertificateIssued, IssuedCertificate
from tasks.trail import record_facts

log = logging.getLogger(__name__)

KEY_FILE = "ca-key.pem"
CERT_FILE = "ca.pem"
CONTENT_SIGNER_FILE = "content-signer.pem"
RESPONDER_FILE = "ocsp-responder.pem"
# The attempt references under which the CA records the certificates it issues for itself.
CONTENT_SIGNER_REF = "ca:content-signing"
RESPONDER_REF = "ca:ocsp-responder"
CRL_ROW = 1


def ca_folder(instance_path: Path) -> Path:
    """Where the local CA of an instance keeps its (encrypted) key and certificate."""
    return Path(instance_path) / "ca"


class CertificateAuthority(Protocol):
    """What the encoder needs from a CA."""

    def issue(
        self,
        public_key,
        subject_cn: str,
        profile_name: str,
        validity_days: int,
        attempt_ref: str,
        card_number: str | None = None,
        record_with=None,
        card_uuid: uuid.UUID | None = None,
        fascn: bytes | None = None,
    ) -> x509.Certificate:
        """Issue a certificate of ``profile_name`` for ``public_key`` (``record_with``: see LocalCA).

        ``card_uuid`` (the card's GUID) and ``fascn`` (the 25-byte packed FASC-N) go into the
        subjectAltName of the profiles that carry them (PIV and Card Authentication).
        """
        ...

    def issue_card(
        self,
        requests: Sequence[tuple[object, str]],
        subject_cn: str,
        validity_days: int,
        attempt_ref: str,
        card_number: str | None = None,
        record_with=None,
        card_uuid: uuid.UUID | None = None,
        fascn: bytes | None = None,
    ) -> list[x509.Certificate]:
        """``issue`` for every (public key, profile name) of one card, recorded together (one
        ``record_with`` call): what the encoder calls. An adaptor may issue them one by one, revoking
        what it got before it raises."""
        ...

    def content_signer(self) -> tuple[PrivateKeyTypes, x509.Certificate]:
        """The key and certificate (EKU id-PIV-content-signing) that sign CHUIDs and Security Objects."""
        ...

    def revoke_attempt(self, attempt_ref: str, reason: str) -> list[str]:
        """Revoke every certificate of ``attempt_ref``; returns their serials."""
        ...

    def crl(self) -> bytes:
        """The current certificate revocation list (PEM)."""
        ...


def subject_alt_names(card_uuid: uuid.UUID | None, fascn: bytes | None) -> list[x509.GeneralName]:
    """The card's FASC-N as otherName and its UUID as a ``urn:uuid:`` URI (FIPS 201-3, 4.2.2)."""
    names: list[x509.GeneralName] = []
    if fascn is not None:
        if not isinstance(fascn, bytes) or len(fascn) != 25:
            raise ValueError("a FASC-N is 25 bytes (packed BCD)")
        names.append(x509.OtherName(ID_PIV_FASCN, b"\x04\x19" + fascn))  # OCTET STRING of 25 bytes
    if card_uuid is not None:
        if not isinstance(card_uuid, uuid.UUID):
            raise ValueError("a card UUID is a uuid.UUID")
        names.append(x509.UniformResourceIdentifier(card_uuid.urn))
    return names


def _create_once(path: Path, data: bytes) -> bool:
    """Write ``path`` (mode 0600) unless it exists; True when this call wrote it (racers keep the first)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)  # atomic, and fails if another process got there first
        except FileExistsError:
            return False
        return True
    finally:
        temporary.unlink(missing_ok=True)


def _replace(path: Path, data: bytes) -> None:
    """Write ``path`` (mode 0600) in one step: readers see the old file or the new, never half."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _utc(moment: datetime) -> datetime:
    """SQLite gives naive datetimes back; they are UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class LocalCA:
    """A CA whose key sits (encrypted) in a folder; issuances are recorded through ``sessions``."""

    def __init__(self, folder: Path, passphrase: str, sessions: sessionmaker,
                 config: PkiConfig | None = None) -> None:
        """Load the CA key and certificate written by ``LocalCA.init``; ``config``: the shipped profiles."""
        folder = Path(folder)
        try:
            self.key = serialization.load_pem_private_key(
                (folder / KEY_FILE).read_bytes(), password=passphrase.encode()
            )
            self.certificate = x509.load_pem_x509_certificate((folder / CERT_FILE).read_bytes())
        except FileNotFoundError:
            raise CaRefusedError(f"The local CA is not set up in {folder}. Run `cardflow ca init`.") from None
        except (TypeError, ValueError):
            raise CaRefusedError("The local CA key could not be opened: check the CA passphrase.") from None
        self.sessions = sessions
        self.folder = folder
        self.config = config or pki_config.load()
        self._passphrase = passphrase.encode()
        self._authority_key_id = x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key())
        self._responder: tuple[PrivateKeyTypes, x509.Certificate] | None = None
        self._responder_lock = threading.Lock()

    @staticmethod
    def init(folder: Path, passphrase: str, common_name: str | None = None,
             config: PkiConfig | None = None) -> Path:
        """Create the CA key (encrypted, mode 0600) and self-signed certificate; returns the cert path.

        The certificate carries the subject and every certificate policy of ``config``.
        """
        config = config or pki_config.load()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if (folder / KEY_FILE).exists():
            raise CaRefusedError(f"A CA key already exists in {folder}; refusing to replace it.")
        key = ec.generate_private_key(ec.SECP256R1())
        name = config.ca_name
        if common_name is not None:
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = _now()
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=config.ca_validity_days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.CertificatePolicies(
                [x509.PolicyInformation(oid, None) for oid in config.ca_policies]), critical=False)
            .sign(key, hashes.SHA256())
        )
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase.encode()),
        )
        # Create with 0600 from the start: a chmod after writing would leave a window.
        descriptor = os.open(folder / KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(pem)
        (folder / CERT_FILE).write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        return folder / CERT_FILE

    # -- issuing -------------------------------------------------------------------------------

    def _builder(self, profile: CertificateProfile, subject: x509.Name, public_key, days: int,
                 names: list[x509.GeneralName]) -> x509.CertificateBuilder:
        """A certificate of ``profile``: usages, names, policies, and where revocation is published."""
        now = _now()
        not_after = min(now + timedelta(days=days), self.certificate.not_valid_after_utc)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(profile.key_usage_for(public_key), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(self._authority_key_id, critical=False)
            .add_extension(x509.CertificatePolicies(
                [x509.PolicyInformation(oid, None) for oid in profile.policies]), critical=False)
            .add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
                full_name=[x509.UniformResourceIdentifier(self.config.crl_url)], relative_name=None,
                reasons=None, crl_issuer=None)]), critical=False)
            .add_extension(x509.AuthorityInformationAccess([
                x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS,
                                       x509.UniformResourceIdentifier(self.config.ca_certificate_url)),
                x509.AccessDescription(AuthorityInformationAccessOID.OCSP,
                                       x509.UniformResourceIdentifier(self.config.ocsp_url)),
            ]), critical=False)
        )
        if profile.extended_key_usage:
            builder = builder.add_extension(x509.ExtendedKeyUsage(list(profile.extended_key_usage)),
                                            critical=profile.extended_key_usage_critical)
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return builder

    def issue(
        self,
        public_key,
        subject_cn: str,
        profile_name: str,
        validity_days: int,
        attempt_ref: str,
        card_number: str | None = None,
        record_with=None,
        card_uuid: uuid.UUID | None = None,
        fascn: bytes | None = None,
    ) -> x509.Certificate:
        """Sign a certificate for ``public_key`` after the profile ``profile_name`` and record it."""
        return self.issue_card([(public_key, profile_name)], subject_cn, validity_days, attempt_ref,
                               card_number, record_with, card_uuid, fascn)[0]

    def issue_card(
        self,
        requests: Sequence[tuple[object, str]],
        subject_cn: str,
        validity_days: int,
        attempt_ref: str,
        card_number: str | None = None,
        record_with=None,
        card_uuid: uuid.UUID | None = None,
        fascn: bytes | None = None,
    ) -> list[x509.Certificate]:
        """Sign a certificate per (public key, profile name) of one card, and record them all in
        one transaction: one commit a card, not one a certificate.

        ``record_with(session)`` runs first in the recording transaction. It may refuse
        (CardSdkError: the station's claim lapsed), and a certificate that is not recorded cannot
        be revoked, so none leaves the CA then. It may also write what must commit with the
        certificates (the card's sealed secrets): one commit for both.
        """
        if not 1 <= validity_days <= 3650:
            raise CaRefusedError(f"The CA refuses a validity of {validity_days} days.")
        if not isinstance(subject_cn, str) or not 0 < len(subject_cn) <= 40 or not subject_cn.isprintable():
            raise CaRefusedError("The CA refuses a subject name that is empty, longer than 40 characters or "
                                 "holds control characters.")
        signed: list[tuple[x509.Certificate, CertificateProfile]] = []
        for public_key, profile_name in requests:
            profile = self.config.profile(profile_name)
            if profile is None or profile.slot is None:
                raise CaRefusedError(f"The CA has no certificate profile {profile_name!r}.")
            try:
                kinds = profile.subject_alt_name
                names = subject_alt_names(card_uuid if "uuid" in kinds else None,
                                          fascn if "fascn" in kinds else None)
                subject = profile.subject_name(subject_cn)
                signed.append((self._builder(profile, subject, public_key, validity_days, names).sign(
                    self.key, hashes.SHA256()), profile))
            except (TypeError, ValueError) as error:
                raise CaRefusedError(f"The CA refused the request: {error}.") from None
        with self.sessions.begin() as session:
            if record_with is not None:
                record_with(session)
            self._record(session, signed, attempt_ref, card_number)
        return [certificate for certificate, _profile in signed]

    @staticmethod
    def _record(session: Session, signed: Sequence[tuple[x509.Certificate, CertificateProfile]],
                attempt_ref: str, card_number: str | None) -> None:
        """Record certificates with their audit entries, in one statement built once: a card's
        certificates as ORM objects cost it more than the rest of its production records."""
        rows = [{
            "serial": f"{certificate.serial_number:X}", "attempt_ref": attempt_ref,
            "card_number": card_number, "slot": profile.slot or "", "certificate_type": profile.name,
            "subject": certificate.subject.rfc4514_string()[:400],
            "not_before": certificate.not_valid_before_utc, "not_after": certificate.not_valid_after_utc,
            "pem": certificate.public_bytes(serialization.Encoding.PEM).decode(),
        } for certificate, profile in signed]
        session.connection().execute(_INSERT_ISSUED, rows)
        record_facts(session, [CertificateIssued(
            row["card_number"], row["serial"], row["certificate_type"], row["slot"], row["attempt_ref"],
            row["subject"], row["not_after"]) for row in rows])

    def _own_certificate(self, path: Path, build, attempt_ref: str, profile: CertificateProfile,
                         replace: bool) -> None:
        """Issue one of the CA's own certificates (``build(key) -> certificate``), record it, keep it
        encrypted in ``path``. Recorded first, so no certificate the CA signed is unknown to it."""
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = build(key)
        with self.sessions.begin() as session:
            self._record(session, [(certificate, profile)], attempt_ref, None)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(self._passphrase),
        ) + certificate.public_bytes(serialization.Encoding.PEM)
        if replace:
            _replace(path, pem)
        elif not _create_once(path, pem):
            # Another process created it at the same moment: ours is never used.
            self._revoke_serials([f"{certificate.serial_number:X}"], "superseded")

    def _load_pair(self, path: Path) -> tuple[PrivateKeyTypes, x509.Certificate]:
        data = path.read_bytes()
        return serialization.load_pem_private_key(data, password=self._passphrase), \
            x509.load_pem_x509_certificate(data)

    def content_signer(self) -> tuple[PrivateKeyTypes, x509.Certificate]:
        """The content-signing key and certificate (CHUID, Security Object), made on first use.

        Kept in the CA folder encrypted with the CA passphrase, like the CA key.
        """
        path = self.folder / CONTENT_SIGNER_FILE
        profile = self.config.profiles[pki_config.CONTENT_SIGNING]
        if not path.exists():
            self._own_certificate(path, lambda key: self._builder(
                profile, profile.subject_name(""), key.public_key(), profile.validity_days or 1095, []
            ).sign(self.key, hashes.SHA256()), CONTENT_SIGNER_REF, profile, replace=False)
        return self._load_pair(path)

    def ocsp_responder(self) -> tuple[PrivateKeyTypes, x509.Certificate]:
        """The delegated OCSP responder's key and certificate (id-kp-OCSPSigning, id-pkix-ocsp-nocheck).

        Short-lived, as a nocheck certificate should be: renewed once a third of its life is left.
        """
        now = datetime.now(UTC)
        cached = self._responder
        if cached is not None and not self._renewal_due(cached[1], now):
            return cached
        with self._responder_lock:  # the console's threads renew it once, not each
            if self._responder is not cached:
                return self._responder
            path = self.folder / RESPONDER_FILE
            pair = self._load_pair(path) if path.exists() else None
            if pair is None or self._renewal_due(pair[1], now):
                self._own_certificate(path, self._responder_certificate, RESPONDER_REF,
                                      _RESPONDER_PROFILE, replace=pair is not None)
                pair = self._load_pair(path)
            self._responder = pair
            return pair

    def _renewal_due(self, certificate: x509.Certificate, now: datetime) -> bool:
        life = certificate.not_valid_after_utc - certificate.not_valid_before_utc
        return certificate.not_valid_after_utc - now < life / 3

    def _responder_certificate(self, key) -> x509.Certificate:
        now = _now()
        common_name = self.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        name = f"{common_name[0].value if common_name else 'cardflow CA'} OCSP responder"[:64]
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(min(now + timedelta(days=self.config.responder_validity_days),
                                 self.certificate.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                           critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
            .add_extension(x509.OCSPNoCheck(), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(self._authority_key_id, critical=False)
            .sign(self.key, hashes.SHA256())
        )

    # -- revoking and publishing ---------------------------------------------------------------

    def revoke_attempt(self, attempt_ref: str, reason: str) -> list[str]:
        """Revoke the attempt's certificates not revoked yet (``reason`` is free text; RFC 5280's
        names are kept, any other becomes cessationOfOperation in the CRL), then publish the CRL."""
        with self.sessions.begin() as session:
            rows = session.scalars(
                select(IssuedCertificate).where(
                    IssuedCertificate.attempt_ref == attempt_ref, IssuedCertificate.revoked_at.is_(None)
                )
            ).all()
            now = datetime.now(UTC)
            for row in rows:
                row.revoked_at = now
                row.revocation_reason = reason
            serials = [row.serial for row in rows]
        if serials:
            self._publish_after_revocation()
        return serials

    def _revoke_serials(self, serials: list[str], reason: str) -> None:
        with self.sessions.begin() as session:
            session.execute(update(IssuedCertificate).where(
                IssuedCertificate.serial.in_(serials), IssuedCertificate.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC), revocation_reason=reason))
        self._publish_after_revocation()

    def _publish_after_revocation(self) -> None:
        # The revocation is committed and OCSP answers it at once; a CRL that fails to sign now is
        # signed again by the next sweep (refresh_crl sees it is older than the revocation).
        try:
            self.publish_crl()
        except Exception:
            log.exception("the CRL could not be published after a revocation; the next sweep retries")

    def publish_crl(self) -> int:
        """Sign a new CRL of every revoked certificate and store it as the current one; its number."""
        for _ in range(3):
            try:
                with self.sessions.begin() as session:
                    return self._sign_and_store(session)
            except IntegrityError:
                continue  # two hosts published the very first CRL at once: take the next number
        raise CaRefusedError("The CRL could not be published: its number kept colliding.")

    def _sign_and_store(self, session: Session, first: bool = False) -> int:
        # Raising the number first takes the row's lock (the write lock on SQLite): whoever signs
        # next waits, then reads the revocations after ours, so a higher number never lists less.
        number = None if first else session.execute(
            update(PublishedCrl).where(PublishedCrl.id == CRL_ROW).values(number=PublishedCrl.number + 1)
            .returning(PublishedCrl.number)).scalar()
        # The row keeps the precise moment before the revocations are read (the sweep compares
        # revocation times with it); the CRL itself says it to the second.
        read_at = datetime.now(UTC)
        now = read_at.replace(microsecond=0)
        if number is None:
            number = 1
            session.execute(insert(PublishedCrl).values(id=CRL_ROW, number=number, this_update=read_at,
                                                        next_update=now, der=b""))
        next_update = now + timedelta(hours=self.config.crl_next_update_hours)
        revoked = session.execute(
            select(IssuedCertificate.serial, IssuedCertificate.revoked_at,
                   IssuedCertificate.revocation_reason)
            .where(IssuedCertificate.revoked_at.is_not(None))).all()
        entries = revoked_entries(revoked)
        der = sign_crl(self.key, self.certificate, number, now, next_update, entries)
        session.execute(update(PublishedCrl).where(PublishedCrl.id == CRL_ROW)
                        .values(this_update=read_at, next_update=next_update, der=der))
        log.info("CRL %d published: %d revoked certificates", number, len(entries))
        return number

    def refresh_crl(self) -> bool:
        """Publish a new CRL when none is stored, when nextUpdate is near, or when a revocation is
        newer than the stored CRL (its publication failed); True when it published."""
        with self.sessions() as session:
            if not self._refresh_due(session):
                return False
        return self._publish_if_due(self._refresh_due)

    def _refresh_due(self, session: Session) -> bool:
        stored = session.execute(select(PublishedCrl.this_update, PublishedCrl.next_update)
                                 .where(PublishedCrl.id == CRL_ROW)).first()
        if stored is None:
            return True
        newest = session.scalar(select(IssuedCertificate.revoked_at)
                                .where(IssuedCertificate.revoked_at.is_not(None))
                                .order_by(IssuedCertificate.revoked_at.desc()).limit(1))
        near_end = _utc(stored.next_update) - datetime.now(UTC) <= timedelta(
            hours=self.config.crl_refresh_before_hours)
        return near_end or (newest is not None and _utc(newest) >= _utc(stored.this_update))

    def _expired(self, session: Session) -> bool:
        head = self.stored_crl_number(session)
        return head is None or head[1] <= datetime.now(UTC)

    def _publish_if_due(self, due) -> bool:
        """Publish when ``due(session)`` still holds once this transaction holds the CRL row: hosts
        (a sweep, a page) that saw the same stale CRL at once publish one new CRL, not one each,
        so a client's "not modified" stays true until something changed."""
        for _ in range(3):
            try:
                with self.sessions.begin() as session:
                    # A no-op UPDATE takes the row's lock (the write lock on SQLite) in every mode.
                    # Before the first CRL there is no row to lock: the first is then inserted,
                    # never raised, so a host that published it meanwhile makes ours collide.
                    locked = session.execute(update(PublishedCrl).where(PublishedCrl.id == CRL_ROW)
                                             .values(number=PublishedCrl.number)).rowcount
                    if not due(session):
                        return False
                    self._sign_and_store(session, first=not locked)
                    return True
            except IntegrityError:
                continue  # another host published the very first CRL meanwhile: look again
        raise CaRefusedError("The CRL could not be published: its number kept colliding.")

    def stored_crl_number(self, session: Session) -> tuple[int, datetime] | None:
        """The stored CRL's number and nextUpdate, without its bytes (for a conditional GET)."""
        row = session.execute(select(PublishedCrl.number, PublishedCrl.next_update)
                              .where(PublishedCrl.id == CRL_ROW)).first()
        return None if row is None else (row.number, _utc(row.next_update))

    def stored_crl(self, session: Session) -> tuple[bytes, datetime] | None:
        """The current CRL (DER) and its nextUpdate, as stored; None when none was published yet."""
        row = session.execute(select(PublishedCrl.der, PublishedCrl.next_update)
                              .where(PublishedCrl.id == CRL_ROW)).first()
        if row is None or not row.der:
            return None
        return row.der, _utc(row.next_update)

    def current_crl(self) -> bytes:
        """The current CRL (DER), published first when none is stored or it has expired."""
        with self.sessions() as session:
            stored = self.stored_crl(session)
        if stored is None or stored[1] <= datetime.now(UTC):
            self._publish_if_due(self._expired)
            with self.sessions() as session:
                stored = self.stored_crl(session)
        return stored[0]

    def crl(self) -> bytes:
        """The current certificate revocation list (PEM), as the console serves it."""
        return x509.load_der_x509_crl(self.current_crl()).public_bytes(serialization.Encoding.PEM)


# The responder certificate is recorded like any other; its shape is fixed by RFC 6960, not configured.
_RESPONDER_PROFILE = CertificateProfile(
    name="OCSP Responder", subject=(), key_usage=("digitalSignature",),
    extended_key_usage=(ExtendedKeyUsageOID.OCSP_SIGNING,), extended_key_usage_critical=False,
    subject_alt_name=(), policies=())
_INSERT_ISSUED = insert(IssuedCertificate.__table__)
