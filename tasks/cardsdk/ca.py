"""The certificate authority behind the encoder: an interface, and a local CA on ``cryptography``.

An external CA replaces ``LocalCA`` by implementing ``CertificateAuthority``. The local CA keeps
its key encrypted in the instance folder and records every issuance, so certificates of a
spoiled attempt can be revoked and published in the CRL.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from tasks.cardsdk.piv.errors import CaRefusedError
from tasks.cardsdk.piv.profiles import SLOTS
from tasks.cardsdk.records import IssuedCertificate

KEY_FILE = "ca-key.pem"
CERT_FILE = "ca.pem"
CONTENT_SIGNER_FILE = "content-signer.pem"
ID_PIV_CARD_AUTH = ObjectIdentifier("2.16.840.1.101.3.6.8")
ID_PIV_CONTENT_SIGNING = ObjectIdentifier("2.16.840.1.101.3.6.7")
ID_PIV_FASCN = ObjectIdentifier("2.16.840.1.101.3.6.6")
ID_MS_SMARTCARD_LOGON = ObjectIdentifier("1.3.6.1.4.1.311.20.2.2")

# Key usage per certificate type, after the PIV certificate profile (FIPS 201 / NIST X.509 profile).
USAGES: dict[str, dict] = {
    "PIV Authentication": {
        "digital_signature": True,
        "eku": [ExtendedKeyUsageOID.CLIENT_AUTH, ID_MS_SMARTCARD_LOGON],
    },
    "Digital Signature": {
        "digital_signature": True,
        "content_commitment": True,
        "eku": [ExtendedKeyUsageOID.EMAIL_PROTECTION],
    },
    "Key Management": {"agreement_or_encipherment": True, "eku": [ExtendedKeyUsageOID.EMAIL_PROTECTION]},
    "Card Authentication": {"digital_signature": True, "eku": [ID_PIV_CARD_AUTH]},
}
REASONS = {flag.value: flag for flag in x509.ReasonFlags}


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
        guard=None,
        card_uuid: uuid.UUID | None = None,
        fascn: bytes | None = None,
    ) -> x509.Certificate:
        """Issue a certificate of ``profile_name`` for ``public_key`` (``guard``: see LocalCA).

        ``card_uuid`` (the card's GUID) and ``fascn`` (the 25-byte packed FASC-N) go into the
        subjectAltName of the profiles that carry them (PIV and Card Authentication).
        """
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


def _key_usage(profile: dict, public_key) -> x509.KeyUsage:
    """KeyUsage for a profile; key management means encipherment for RSA, agreement for EC."""
    managing = profile.get("agreement_or_encipherment", False)
    return x509.KeyUsage(
        digital_signature=profile.get("digital_signature", False),
        content_commitment=profile.get("content_commitment", False),
        key_encipherment=managing and isinstance(public_key, rsa.RSAPublicKey),
        data_encipherment=False,
        key_agreement=managing and isinstance(public_key, ec.EllipticCurvePublicKey),
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def subject_alt_names(card_uuid: uuid.UUID | None, fascn: bytes | None) -> list[x509.GeneralName]:
    """The card's UUID as a ``urn:uuid:`` URI and its FASC-N as otherName (FIPS 201-3, 4.2.2)."""
    names: list[x509.GeneralName] = []
    if fascn is not None:
        if not isinstance(fascn, bytes) or len(fascn) != 25:
            raise ValueError("a FASC-N is 25 bytes (packed BCD)")
        names.append(x509.OtherName(ID_PIV_FASCN, b"\x04\x19" + fascn))  # OCTET STRING of 25 bytes
    if card_uuid is not None:
        names.append(x509.UniformResourceIdentifier(card_uuid.urn))
    return names


def _create_once(path: Path, data: bytes) -> None:
    """Write ``path`` (mode 0600) unless it exists; two processes racing keep the first one's file."""
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
            pass
    finally:
        temporary.unlink(missing_ok=True)


class LocalCA:
    """A CA whose key sits (encrypted) in a folder; issuances are recorded through ``sessions``."""

    def __init__(self, folder: Path, passphrase: str, sessions: sessionmaker) -> None:
        """Load the CA key and certificate written by ``LocalCA.init``."""
        folder = Path(folder)
        try:
            self.key = serialization.load_pem_private_key(
                (folder / KEY_FILE).read_bytes(), password=passphrase.encode()
            )
            self.certificate = x509.load_pem_x509_certificate((folder / CERT_FILE).read_bytes())
        except FileNotFoundError:
            raise CaRefusedError(f"The local CA is not set up in {folder}. Run `cardflow ca init`.") from None
        except ValueError:
            raise CaRefusedError("The local CA key could not be opened: check the CA passphrase.") from None
        self.sessions = sessions
        self.folder = folder
        self._passphrase = passphrase.encode()

    @staticmethod
    def init(folder: Path, passphrase: str, common_name: str = "cardflow local CA") -> Path:
        """Create the CA key (encrypted, mode 0600) and self-signed certificate; returns the cert path."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if (folder / KEY_FILE).exists():
            raise CaRefusedError(f"A CA key already exists in {folder}; refusing to replace it.")
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = datetime.now(UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
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

    def issue(
        self,
        public_key,
        subject_cn: str,
        profile_name: str,
        validity_days: int,
        attempt_ref: str,
        card_number: str | None = None,
        guard=None,
        card_uuid: uuid.UUID | None = None,
        fascn: bytes | None = None,
    ) -> x509.Certificate:
        """Sign a certificate for ``public_key`` with the profile's usages and record it.

        ``guard(session)`` runs in the recording transaction and may refuse (CardSdkError): a
        certificate that is not recorded cannot be revoked, so it must not leave the CA either.
        """
        profile = USAGES.get(profile_name)
        if profile is None:
            raise CaRefusedError(f"The CA has no certificate profile {profile_name!r}.")
        if not 1 <= validity_days <= 3650:
            raise CaRefusedError(f"The CA refuses a validity of {validity_days} days.")
        now = datetime.now(UTC).replace(microsecond=0)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)])
        try:
            certificate = (
                x509.CertificateBuilder()
                .subject_name(subject)
                .issuer_name(self.certificate.subject)
                .public_key(public_key)
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(minutes=5))
                .not_valid_after(now + timedelta(days=validity_days))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(_key_usage(profile, public_key), critical=True)
                .add_extension(x509.ExtendedKeyUsage(profile["eku"]), critical=False)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
                .add_extension(
                    x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
                )
            )
            names = subject_alt_names(card_uuid, fascn)
            if names:
                certificate = certificate.add_extension(x509.SubjectAlternativeName(names), critical=False)
            certificate = certificate.sign(self.key, hashes.SHA256())
        except (TypeError, ValueError) as error:
            raise CaRefusedError(f"The CA refused the request: {error}.") from None
        with self.sessions.begin() as session:
            if guard is not None:
                guard(session)
            session.add(
                IssuedCertificate(
                    serial=f"{certificate.serial_number:X}",
                    attempt_ref=attempt_ref,
                    card_number=card_number,
                    slot=f"{SLOTS[profile_name]['slot']:02X}",
                    certificate_type=profile_name,
                    subject=subject.rfc4514_string(),
                    not_before=certificate.not_valid_before_utc,
                    not_after=certificate.not_valid_after_utc,
                    pem=certificate.public_bytes(serialization.Encoding.PEM).decode(),
                )
            )
        return certificate

    def content_signer(self) -> tuple[PrivateKeyTypes, x509.Certificate]:
        """The content-signing key and certificate, created on first use and kept in the CA folder."""
        path = self.folder / CONTENT_SIGNER_FILE
        if not path.exists():
            key = ec.generate_private_key(ec.SECP256R1())
            now = datetime.now(UTC).replace(microsecond=0)
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cardflow content signer")])
            certificate = (
                x509.CertificateBuilder()
                .subject_name(name)
                .issuer_name(self.certificate.subject)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(minutes=5))
                .not_valid_after(min(now + timedelta(days=3 * 365), self.certificate.not_valid_after_utc))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(
                    x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
                )
                .add_extension(x509.ExtendedKeyUsage([ID_PIV_CONTENT_SIGNING]), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .add_extension(
                    x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
                )
                .sign(self.key, hashes.SHA256())
            )
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(self._passphrase),
            ) + certificate.public_bytes(serialization.Encoding.PEM)
            _create_once(path, pem)
        data = path.read_bytes()
        key = serialization.load_pem_private_key(data, password=self._passphrase)
        return key, x509.load_pem_x509_certificate(data)

    def revoke_attempt(self, attempt_ref: str, reason: str) -> list[str]:
        """Revoke the attempt's certificates not revoked yet; ``reason`` is free text."""
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
            return [row.serial for row in rows]

    def crl(self, next_update_days: int = 7) -> bytes:
        """A freshly signed CRL (PEM) listing every revoked certificate."""
        now = datetime.now(UTC)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.certificate.subject)
            .last_update(now)
            .next_update(now + timedelta(days=next_update_days))
        )
        with self.sessions() as session:
            rows = session.scalars(
                select(IssuedCertificate).where(IssuedCertificate.revoked_at.is_not(None))
            ).all()
            for row in rows:
                # Spoiled cards were never used: the standard reason is cessation of operation.
                flag = REASONS.get(row.revocation_reason or "", x509.ReasonFlags.cessation_of_operation)
                revoked = (
                    x509.RevokedCertificateBuilder()
                    .serial_number(int(row.serial, 16))
                    .revocation_date(row.revoked_at)
                    .add_extension(x509.CRLReason(flag), critical=False)
                    .build()
                )
                builder = builder.add_revoked_certificate(revoked)
        return builder.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
