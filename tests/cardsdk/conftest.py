"""Fixtures for the Card SDK: a SQLite database, a local CA, custody, an in-process encoder."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

import tasks.cardsdk.records  # noqa: F401  (registers the SDK tables on Base)
from tasks.cardsdk.ca import LocalCA
from tasks.cardsdk.card_identity import CardIdentityIssuer
from tasks.cardsdk.custody import Custody, load_or_create_key
from tasks.cardsdk.encoder import build_encoder
from tasks.cardsdk.job import CardJob
from tasks.store import Base

CA_PASSPHRASE = "test passphrase"


@pytest.fixture
def engine(tmp_path):
    """A fresh SQLite database with every table."""
    engine = create_engine(f"sqlite:///{tmp_path / 'cardflow.db'}")
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine):
    """A sessionmaker on the test database."""
    return sessionmaker(engine, expire_on_commit=False)


@pytest.fixture
def ca(tmp_path, sessions):
    """A local CA initialised in a temporary folder."""
    LocalCA.init(tmp_path / "ca", CA_PASSPHRASE)
    return LocalCA(tmp_path / "ca", CA_PASSPHRASE, sessions)


@pytest.fixture
def custody(tmp_path, sessions):
    """Custody with a key file in the temporary instance folder."""
    return Custody(sessions, load_or_create_key(tmp_path))


@pytest.fixture
def encoder(ca, custody):
    """An in-process encoder: every job gets a fresh blank virtual card."""
    return build_encoder("inprocess", None, "piv-3des-p256", ca, custody)


@pytest.fixture
def make_job(tmp_path):
    """Build CardJobs with sensible defaults."""

    def make(card_id: int = 17, earlier_attempts: int = 0, **overrides) -> CardJob:
        """One job with a fresh card identity; keyword arguments override the defaults."""
        identity = CardIdentityIssuer("1234", "5678").new(card_id, earlier_attempts)
        values = dict(
            card_uuid=identity.card_uuid,
            fascn=identity.fascn.pack(),
            card_id=card_id,
            card_number=f"TC-{card_id:06d}",
            organisation="Acme",
            valid_until=date.today() + timedelta(days=14),
            attempt_ref=f"order-3/card-{card_id}/attempt-1",
            spool_dir=Path(tmp_path),
            certificates=("PIV Authentication", "Digital Signature"),
        )
        values.update(overrides)
        return CardJob(**values)

    return make
