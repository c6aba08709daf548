"""The Card SDK's tables: certificates the CA issued, and the encrypted per-card secrets in custody."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import DateTime, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tasks.store import Base, utcnow


class IssuedCertificate(Base):
    """One certificate issued for one key slot of one encoding attempt."""

    __tablename__ = "issued_certificates"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Hex serial: x509 serials are up to 159 bits, too large for a database integer.
    serial: Mapped[str] = mapped_column(String(40), unique=True)
    attempt_ref: Mapped[str] = mapped_column(String(200), index=True)
    card_number: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    slot: Mapped[str] = mapped_column(String(2))
    certificate_type: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(400))
    not_before: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    not_after: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    pem: Mapped[str] = mapped_column(Text)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revocation_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


@dataclass(frozen=True)
class CertificateIssued:
    """A certificate the CA recorded, as the audit trail tells it (tasks.trail)."""

    card_number: str | None
    serial: str
    certificate_type: str
    slot: str
    attempt_ref: str
    subject: str
    not_after: datetime


class CustodySecret(Base):
    """One AES-GCM encrypted secret (pin, puk, management_key) of one card and attempt."""

    __tablename__ = "custody_secrets"
    __table_args__ = (
        Index("ix_custody_card_created", "card_id", "created_at", "id"),
        UniqueConstraint("card_id", "attempt_ref", "kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    card_id: Mapped[int] = mapped_column(Integer)
    attempt_ref: Mapped[str] = mapped_column(String(200), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    nonce: Mapped[bytes] = mapped_column(LargeBinary(12))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Set when the secret was given out for good (a PIN letter); its ciphertext is then erased.
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class CustodyRelease(Base):
    """A release of a card's PIN and PUK from custody: who, when, which attempt (never the values)."""

    __tablename__ = "custody_releases"

    id: Mapped[int] = mapped_column(primary_key=True)
    card_id: Mapped[int] = mapped_column(Integer, index=True)
    attempt_ref: Mapped[str] = mapped_column(String(200))
    kinds: Mapped[str] = mapped_column(String(100))  # "pin,puk" or "management_key"
    released_by: Mapped[str] = mapped_column(String(100))
    released_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
