"""The audit trail's hash chain: every new entry is linked to the one before it when it is flushed.

Each entry's ``hash`` is the sha256 of its predecessor's hash and its own content (id, time,
actor, action, instance, order, card, detail), so editing, deleting, inserting or reordering an
entry breaks the chain from there on. Entries are numbered and linked under one lock per
database (PostgreSQL: an advisory transaction lock; SQLite: every transaction already holds the
write lock), so concurrent writers build one chain. The web app only ever INSERTs and SELECTs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from itertools import count

from sqlalchemy import event, insert, select
from sqlalchemy.orm import Session, sessionmaker

from engine.store import AuditEvent

GENESIS = "0" * 64
# Turn the session's pending domain rows (a card's state change, an issued certificate...) into
# audit entries of the same transaction. The composition root gives them to its session factory
# (the engine core knows no cards); sessions of other factories derive nothing.
Deriver = Callable[[Session], Iterable[AuditEvent]]
DERIVERS = "audit_derivers"
# Any constant: the key of PostgreSQL's advisory lock that serialises appends to the chain.
CHAIN_LOCK = 7_453_001
_created = count()


@dataclass(slots=True)
class Entry:
    """An entry for ``append_entries``: an ``AuditEvent``'s columns without the ORM's instrumentation,
    which cost a card's production more than hashing its entries."""

    actor: str
    action: str
    instance_id: str | None = None
    order_id: int | None = None
    card: str | None = None
    detail: dict = field(default_factory=dict)
    at: datetime | None = None
    id: int | None = None
    prev_hash: str | None = None
    hash: str | None = None

    def as_event(self) -> AuditEvent:
        """The same entry as a row to add to a session (linked when the session flushes)."""
        return AuditEvent(**{key: value for key, value in asdict(self).items() if value is not None})


def _utc(moment: datetime) -> datetime:
    """A stored time as aware UTC (SQLite gives it back without its zone)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def entry_content(entry: AuditEvent | Entry) -> bytes:
    """The canonical bytes of an entry's content, the same when written and when read back."""
    return json.dumps(
        [entry.id, _utc(entry.at).isoformat(timespec="microseconds"), entry.actor, entry.action,
         entry.instance_id, entry.order_id, entry.card, entry.detail or {}],
        sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def entry_hash(prev_hash: str, entry: AuditEvent | Entry) -> str:
    """The hash an entry must carry after ``prev_hash``."""
    return hashlib.sha256(prev_hash.encode() + b"\0" + entry_content(entry)).hexdigest()


def register_deriver(sessions: sessionmaker[Session], deriver: Deriver) -> None:
    """Have ``deriver`` add entries for what the sessions of ``sessions`` are about to write."""
    info = dict(sessions.kw.get("info") or {})
    derivers = list(info.get(DERIVERS, ()))
    if deriver not in derivers:
        info[DERIVERS] = [*derivers, deriver]
        sessions.configure(info=info)


@event.listens_for(AuditEvent, "init")
def _remember_order(target: AuditEvent, _args, _kwargs) -> None:
    """Entries are chained in the order they were made, not in the session's set order."""
    target._created = next(_created)  # noqa: SLF001 - a private, unmapped attribute


def _chain_end(session: Session) -> tuple[int, str]:
    """The last entry's id and hash, read under the chain's lock (held until the commit)."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # Lock and read in one round trip: a card's state change pays for each one.
        cursor = connection.connection.cursor()
        try:
            cursor.execute(f"SELECT pg_advisory_xact_lock({CHAIN_LOCK}); "
                           f"SELECT id, hash FROM {AuditEvent.__tablename__} ORDER BY id DESC LIMIT 1")
            cursor.nextset()
            last = cursor.fetchone()
        finally:
            cursor.close()
    else:
        last = connection.execute(_LAST_ENTRY).first()
    return (last[0], last[1]) if last else (0, GENESIS)


@event.listens_for(Session, "before_flush")
def _link_new_entries(session: Session, _context, _instances) -> None:
    """Derive entries for the session's domain rows, then number the session's new entries after
    the chain's last one and link them to it."""
    for deriver in session.info.get(DERIVERS, ()):
        session.add_all(deriver(session))
    new = sorted((obj for obj in session.new if isinstance(obj, AuditEvent)),
                 key=lambda obj: getattr(obj, "_created", 0))
    if new:
        _link(session, new)


def _link(session: Session, entries: list[AuditEvent] | list[Entry]) -> None:
    """Number ``entries`` after the chain's last entry and hash each onto the one before."""
    last_id, prev = _chain_end(session)
    for offset, entry in enumerate(entries, start=1):
        entry.id = last_id + offset
        entry.at = entry.at or datetime.now(UTC)
        entry.detail = entry.detail or {}
        entry.prev_hash = prev
        entry.hash = prev = entry_hash(prev, entry)


def append_entries(session: Session, entries: list[Entry]) -> None:
    """Append ``entries`` to the chain in one INSERT of the session's transaction: for hot paths
    that write their rows without ORM objects."""
    if not entries:
        return
    _link(session, entries)
    session.connection().execute(_INSERT_ENTRY, [{column: getattr(entry, column) for column in _COLUMNS}
                                                 for entry in entries])


_TABLE = AuditEvent.__table__
_COLUMNS = [column.key for column in _TABLE.columns]
# Built once: statement building costs more than running these on the per-card path.
_LAST_ENTRY = select(_TABLE.c.id, _TABLE.c.hash).order_by(_TABLE.c.id.desc()).limit(1)
_INSERT_ENTRY = insert(_TABLE)
