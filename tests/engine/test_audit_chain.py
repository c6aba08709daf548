"""The audit trail is one hash chain: entries written by any number of sessions at once are
numbered without gaps or duplicates and link up, on SQLite and PostgreSQL; entries written before
the chain existed are linked by the migration, their ids kept."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import JSON, DateTime, Integer, String, column, func, insert, select, table, text
from sqlalchemy.exc import IntegrityError

from engine import schema
from engine.audit_signing import HeadSigner, load_or_create_key
from engine.audit_verify import verify_chain
from engine.db import make_engine, make_sessions, unit_of_work
from engine.store import AuditEvent, Base

BEFORE_CHAIN = "5b1e0c2a7d41"  # the revision before 0003_audit_chain
# The trail as revision 0002 left it: no card, order or hash columns yet.
OLD_EVENTS = table("audit_events", column("id", Integer()), column("at", DateTime(timezone=True)),
                   column("actor", String()), column("action", String()), column("instance_id", String()),
                   column("detail", JSON()))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path) -> str:
    """An empty database: a SQLite file, then a fresh PostgreSQL schema."""
    if request.param == "postgres":
        return request.getfixturevalue("postgres_url")
    return f"sqlite:///{tmp_path / 'audit.db'}"


@pytest.fixture
def signer(tmp_path) -> HeadSigner:
    """A signer with a fresh key in the test's folder."""
    return HeadSigner(load_or_create_key(tmp_path / "keys" / "audit_signing_key"))


def _migrate(url: str, revision: str) -> None:
    """Bring the database at ``url`` to ``revision`` with the product's migrations."""
    engine = make_engine(url)
    with engine.begin() as connection:
        config = Config()
        config.set_main_option("script_location", str(schema.MIGRATIONS))
        config.attributes["connection"] = connection
        config.attributes["target_metadata"] = [Base.metadata]
        command.upgrade(config, revision)
    engine.dispose()


def test_many_writers_at_once_build_one_chain(database_url, signer):
    _migrate(database_url, "head")
    engine = make_engine(database_url)
    sessions = make_sessions(engine)
    writers, per_writer = 8, 15
    barrier, failures = threading.Barrier(writers), []

    def write(n: int) -> None:
        barrier.wait()
        try:
            for i in range(per_writer):
                with unit_of_work(sessions) as session:
                    session.add(AuditEvent(actor=f"writer{n}", action="card state changed", card=f"TC-{i:06}",
                                           detail={"n": n, "i": i}))
                    if i % 5 == 0:  # several entries in one transaction stay together and in order
                        session.add(AuditEvent(actor=f"writer{n}", action="order completed", order_id=n))
        except Exception as error:  # noqa: BLE001 - reported by the main thread
            failures.append(error)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    with unit_of_work(sessions) as session:
        ids = session.scalars(select(AuditEvent.id).order_by(AuditEvent.id)).all()
        signer.sign(session, "after the race")
    expected = writers * (per_writer + 3)
    assert ids == list(range(1, expected + 1))  # no duplicate, no gap
    report = verify_chain(sessions, signer.private_key.public_key())
    assert report.ok, report.problems
    assert (report.entries, report.last_head.entry_id) == (expected, expected)
    engine.dispose()


def test_migration_links_entries_written_before_the_chain(database_url, signer):
    _migrate(database_url, BEFORE_CHAIN)
    engine = make_engine(database_url)
    old = [{"id": id_, "at": datetime(2026, 11, 1, 9, id_, 30, 123456, tzinfo=UTC), "actor": "admin",
            "action": "deploy", "instance_id": None, "detail": {"file": f"f{id_}.bpmn", "ü": [1, 2]}}
           for id_ in (1, 2, 5, 9)]  # ids with gaps, as a sequence leaves them after rollbacks
    with engine.begin() as connection:
        connection.execute(insert(OLD_EVENTS), old)
    _migrate(database_url, "head")
    sessions = make_sessions(engine)
    with unit_of_work(sessions) as session:
        blank = (AuditEvent.hash == "") | (AuditEvent.prev_hash == "")
        assert session.scalar(select(func.count()).where(blank)) == 0
        session.add(AuditEvent(actor="runner", action="instance started"))
    with unit_of_work(sessions) as session:
        entries = session.execute(select(AuditEvent.id, AuditEvent.actor).order_by(AuditEvent.id)).all()
        signer.sign(session, "after the upgrade")
    assert entries == [(1, "admin"), (2, "admin"), (5, "admin"), (9, "admin"), (10, "runner")]
    report = verify_chain(sessions, signer.private_key.public_key())
    assert report.ok, report.problems
    # Blank hashes are no longer a default: a row written around the chain is refused outright.
    with pytest.raises(IntegrityError):
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO audit_events (id, at, actor, action, detail) "
                                    "VALUES (99, CURRENT_TIMESTAMP, 'x', 'y', '{}')"))
    engine.dispose()
