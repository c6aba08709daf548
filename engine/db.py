"""Database connection: one SQLAlchemy engine and session factory per settings.

Two kinds of transaction: ``unit_of_work`` changes data (on SQLite it takes the write lock when it
begins); ``read_only`` only reads (on SQLite it begins deferred, so in WAL mode it reads a snapshot
and neither waits for a writer nor makes one wait; on PostgreSQL it is a READ ONLY transaction).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

# The execution option that marks a read-only session's connections (see read_only). PostgreSQL's
# own option makes its driver begin READ ONLY and is reset when the connection goes back to the pool.
READ_ONLY = "cardflow_read_only"
_READ_ONLY_OPTIONS = {READ_ONLY: True, "postgresql_readonly": True}


class ReadOnlyError(RuntimeError):
    """Something tried to change data inside a read_only block; change data in a unit_of_work."""


def make_engine(url: str) -> Engine:
    """Create the engine; SQLite is set up so the runner threads and the web can share it."""
    if url.startswith("sqlite"):
        _create_private_file(url)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            # The driver's own transaction handling is off so that "begin" below decides.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            # In WAL mode NORMAL syncs at checkpoints, not at every commit: a commit survives a
            # crash or kill -9 of any process (what crash safety needs); only a power cut or an
            # OS crash may lose the last commits. FULL made each card wait on up to four disk
            # flushes, several times the card's own work when the disk is shared.
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(connection):
            # A deferred transaction that later writes fails at once with "database is locked"
            # when another thread wrote meanwhile; taking the write lock up front makes it wait.
            # A read-only one never writes: it begins deferred, and SQLite refuses its writes.
            read_only = bool(connection.get_execution_options().get(READ_ONLY))
            _query_only(connection, read_only)
            connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True)


def _query_only(connection: Connection, on: bool) -> None:
    """Switch SQLite's query_only on or off for this connection, when it is not already."""
    info = connection.connection.info
    if info.get("query_only", False) != on:
        connection.exec_driver_sql(f"PRAGMA query_only={'ON' if on else 'OFF'}")
        info["query_only"] = on


def _create_private_file(url: str) -> None:
    """Create a missing SQLite database file readable by its owner only (0600).

    SQLite creates its -wal and -shm files with the database file's mode, so they follow.
    """
    parsed = make_url(url)
    database = parsed.database
    if not database or database == ":memory:" or parsed.query.get("uri") or database.startswith("file:"):
        return
    try:
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def make_sessions(engine: Engine) -> sessionmaker[Session]:
    """Session factory; objects stay readable after commit so views can use them."""
    sessions = sessionmaker(engine, expire_on_commit=False)
    event.listen(sessions, "before_flush", _refuse_read_only_flush)
    event.listen(sessions, "after_commit", _end_shared_reads)
    return sessions


def _refuse_read_only_flush(session: Session, _context, _instances) -> None:
    """A read-only session's pending changes are refused before any SQL is sent."""
    if session.execution_options.get(READ_ONLY):
        raise ReadOnlyError("This transaction only reads (read_only); nothing was changed. "
                            "Change data inside a unit_of_work.")


@contextmanager
def unit_of_work(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit when the block succeeds, roll back when it raises."""
    session = sessions()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextmanager
def read_only(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction that only reads: pages and views that change nothing.

    On SQLite it takes no write lock, so it is served while a writer holds it; on PostgreSQL it
    is READ ONLY. A change of an ORM object raises ReadOnlyError (at the latest when the block
    ends, so none is silently dropped); a write statement is refused by the database. Nothing is
    committed; objects read stay readable after the block. Inside ``shared_reads`` the block
    joins the thread's shared read transaction instead of beginning its own.
    """
    scope = _shared.get()
    if scope is not None and scope.sessions is sessions:
        with scope.joined() as session:
            yield session
        return
    session = sessions(execution_options=_READ_ONLY_OPTIONS)
    try:
        yield session
        session.flush()
    finally:
        session.close()


class _SharedReads:
    """The read transaction a thread's read_only blocks share, begun by the first of them."""

    def __init__(self, sessions: sessionmaker[Session]):
        self.sessions = sessions
        self.session: Session | None = None

    @contextmanager
    def joined(self) -> Iterator[Session]:
        if self.session is None:
            self.session = self.sessions(execution_options=_READ_ONLY_OPTIONS)
        try:
            yield self.session
            self.session.flush()
        except BaseException:
            # A failed read may leave the transaction unusable: the next block begins a new one.
            self.end()
            raise

    def end(self) -> None:
        if self.session is not None:
            session, self.session = self.session, None
            session.close()


_shared: ContextVar[_SharedReads | None] = ContextVar("cardflow_shared_reads", default=None)


@contextmanager
def shared_reads(sessions: sessionmaker[Session]) -> Iterator[None]:
    """Within the block, this thread's read_only blocks on ``sessions`` share one read transaction.

    A page checks its user's login, draws its menus and reads its content in one transaction
    (one snapshot, one connection) instead of one each: on PostgreSQL every transaction costs
    round trips, on both databases a session and a checkout. A change this thread commits
    meanwhile ends the shared transaction, so the reads after it see the change.
    """
    token = _shared.set(_SharedReads(sessions))
    try:
        yield
    finally:
        scope = _shared.get()
        _shared.reset(token)
        scope.end()


def _end_shared_reads(session: Session) -> None:
    """After a commit, the thread's shared read transaction (if any) no longer sees the latest data."""
    scope = _shared.get()
    if scope is not None and scope.session is not session:
        scope.end()
