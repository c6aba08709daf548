"""The CA's published state: the current CRL (number and bytes), so serving it is one read."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, LargeBinary
from sqlalchemy.orm import Mapped, mapped_column

from tasks.cardsdk.records import IssuedCertificate
from tasks.store import Base


class PublishedCrl(Base):
    """The one current CRL (``id`` 1). Its number only grows: each signing raises it under the row's
    lock, and reads the revocations after taking that lock, so a higher number never lists less."""

    __tablename__ = "published_crls"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    number: Mapped[int] = mapped_column(BigInteger)
    this_update: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    next_update: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    der: Mapped[bytes] = mapped_column(LargeBinary)


# Signing the CRL reads the revoked certificates only: a partial index keeps that a walk over the
# revoked few, not a scan of every certificate ever issued.
REVOKED_INDEX = Index("ix_issued_certificates_revoked", IssuedCertificate.revoked_at,
                      postgresql_where=IssuedCertificate.revoked_at.is_not(None),
                      sqlite_where=IssuedCertificate.revoked_at.is_not(None))
