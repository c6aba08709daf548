"""Read-only transactions: they read while a writer holds SQLite's write lock, and change nothing."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import event, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from engine.db import ReadOnlyError, make_engine, make_sessions, read_only, shared_reads, unit_of_work
from engine.store import Base, User


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def sessions(request, tmp_path) -> Iterator[sessionmaker[Session]]:
    """Sessions on a fresh database (SQLite file, then a PostgreSQL schema) holding one user."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" \
        else f"sqlite:///{tmp_path / 'cardflow.db'}"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    sessions = make_sessions(engine)
    with unit_of_work(sessions) as session:
        session.add(User(name="op", role="operator", password_hash="-"))
    yield sessions
    engine.dispose()


def role(sessions: sessionmaker[Session]) -> str:
    """The stored role of user op."""
    with read_only(sessions) as session:
        return session.scalar(select(User.role).where(User.name == "op"))


def test_a_read_is_served_while_another_connection_holds_the_sqlite_write_lock(tmp_path):
    path = tmp_path / "cardflow.db"
    sessions = make_sessions(make_engine(f"sqlite:///{path}"))
    Base.metadata.create_all(sessions.kw["bind"])
    with unit_of_work(sessions) as session:
        session.add(User(name="op", role="operator", password_hash="-"))
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE users SET role = 'admin'")
    wrote = threading.Event()

    def write_meanwhile() -> None:
        with unit_of_work(sessions) as session:
            session.execute(update(User).values(role="auditor"))
        wrote.set()

    waiting_writer = threading.Thread(target=write_meanwhile)
    try:
        waiting_writer.start()
        began = time.monotonic()
        assert role(sessions) == "operator"  # the last committed state, at once
        assert time.monotonic() - began < 2.0
        assert not wrote.is_set()  # a writer of our own waits for the lock (busy timeout 30 s)
    finally:
        writer.execute("COMMIT")
        writer.close()
    waiting_writer.join(10)
    assert wrote.is_set() and role(sessions) == "auditor"
    sessions.kw["bind"].dispose()


def test_an_orm_change_in_a_read_only_block_is_refused_and_nothing_changes(sessions):
    with pytest.raises(ReadOnlyError, match="only reads"):
        with read_only(sessions) as session:
            session.scalar(select(User)).role = "admin"
    with pytest.raises(ReadOnlyError):
        with read_only(sessions) as session:
            session.add(User(name="intruder", role="admin", password_hash="-"))
            session.scalar(select(User).where(User.name == "intruder"))  # autoflush
    assert role(sessions) == "operator"
    with read_only(sessions) as session:
        assert session.scalar(select(User.name).where(User.name == "intruder")) is None


def test_a_write_statement_in_a_read_only_block_is_refused_by_the_database(sessions):
    with pytest.raises(DBAPIError, match="read-?only"):
        with read_only(sessions) as session:
            session.execute(update(User).values(role="admin"))
    assert role(sessions) == "operator"


def test_writers_still_write_after_read_only_use_of_the_same_connections(sessions):
    for _ in range(3):
        assert role(sessions) == "operator"
    with unit_of_work(sessions) as session:
        session.execute(update(User).values(role="auditor"))
    assert role(sessions) == "auditor"


def test_rows_read_stay_readable_after_the_block(sessions):
    with read_only(sessions) as session:
        user = session.scalar(select(User))
    assert (user.name, user.role) == ("op", "operator")


def begins(sessions: sessionmaker[Session]) -> list[int]:
    """A counter of the transactions begun on ``sessions``' engine (one element, updated in place)."""
    counter = [0]
    event.listen(sessions.kw["bind"], "begin", lambda _connection: counter.__setitem__(0, counter[0] + 1))
    return counter


def test_read_only_blocks_inside_shared_reads_join_one_transaction(sessions):
    counter = begins(sessions)
    with shared_reads(sessions):
        for _ in range(3):
            assert role(sessions) == "operator"
        with read_only(sessions) as first, read_only(sessions) as second:
            assert first is second
    assert counter[0] == 1
    role(sessions)
    assert counter[0] == 2, "outside shared_reads every block begins its own transaction"


def test_a_commit_inside_shared_reads_ends_the_shared_transaction_so_later_reads_see_it(sessions):
    with shared_reads(sessions):
        assert role(sessions) == "operator"
        with unit_of_work(sessions) as session:
            session.execute(update(User).where(User.name == "op").values(role="auditor"))
        assert role(sessions) == "auditor"


def test_a_change_inside_a_shared_read_is_refused_and_the_next_read_begins_afresh(sessions):
    counter = begins(sessions)
    with shared_reads(sessions):
        with pytest.raises(ReadOnlyError), read_only(sessions) as session:
            session.scalar(select(User).where(User.name == "op")).role = "admin"
        assert role(sessions) == "operator"
    assert counter[0] == 2
    assert role(sessions) == "operator"


def test_shared_reads_are_per_thread(sessions):
    seen: list[Session] = []

    def read() -> None:
        with read_only(sessions) as session:
            seen.append(session)

    with shared_reads(sessions), read_only(sessions) as mine:
        thread = threading.Thread(target=read)
        thread.start()
        thread.join()
        assert seen and seen[0] is not mine
