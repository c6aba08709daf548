"""Proving the audit trail: walk the hash chain, then check every signed head against it.

The walk reads entries in id order in keyset batches (constant memory), recomputes each hash
from its predecessor's, and stops at the first entry where the chain breaks, naming it and
saying how: edited (its content no longer matches its hash), cut loose (its link does not name
the entry before it: entries were removed or inserted before it), or moved (neither matches:
swapped, reordered or forged). Then every signed head must carry a good signature of a known key
and name an entry that still has the signed hash; a head naming an entry past the end shows
that the newest entries were cut off, which no chain walk alone can see.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection, Row, Select, func, select
from sqlalchemy.orm import Session, sessionmaker

from engine.audit_chain import GENESIS, entry_hash
from engine.audit_signing import head_payload, key_id
from engine.store import AuditEvent, AuditHead

BATCH = 5000
# Past this many, further head problems are counted, not listed.
MAX_LISTED = 20
Source = sessionmaker[Session] | Session | Connection
EVENTS, HEADS = AuditEvent.__table__, AuditHead.__table__


@dataclass(frozen=True)
class Problem:
    """One way the trail fails to prove itself: the entry it concerns and what is wrong."""

    entry_id: int | None
    message: str


@dataclass(frozen=True)
class SignedHead:
    """A signed head that verified: the chain is proven up to ``entry_id``."""

    entry_id: int
    hash: str
    signed_at: datetime


@dataclass
class VerifyReport:
    """What verify found: counts, the first chain break, problems with signed heads."""

    entries: int = 0
    last_id: int | None = None
    heads: int = 0
    last_head: SignedHead | None = None
    chain_break: Problem | None = None
    head_problems: list[Problem] = field(default_factory=list)
    unlisted: int = 0  # head problems beyond MAX_LISTED

    @property
    def ok(self) -> bool:
        """True when the chain is whole and every signed head holds."""
        return self.chain_break is None and not self.head_problems

    @property
    def problems(self) -> list[Problem]:
        """Every listed problem, the chain break first."""
        return ([self.chain_break] if self.chain_break else []) + self.head_problems

    def summary(self) -> str:
        """One line: OK with counts and the last signed head, or the first problem."""
        if not self.ok:
            return f"audit trail BROKEN: {self.problems[0].message}"
        last = self.last_head
        head = (f"last signed head at entry {last.entry_id} (signed {last.signed_at:%Y-%m-%d %H:%M:%S} UTC)"
                if last else "no signed head yet")
        return f"audit trail OK: {self.entries} entries, {head}"


def _fetch(source: Source, statement: Select) -> Sequence[Row]:
    """Run one read: a session of its own per batch from a factory, else on the given one.
    Reads go through the Core connection: the ORM's result layer would cost a third of verify."""
    if isinstance(source, sessionmaker):
        with source() as session:
            return session.connection().execute(statement).all()
    connection = source.connection() if isinstance(source, Session) else source
    return connection.execute(statement).all()


def _pages(source: Source, statement: Select, key) -> Iterator[Sequence[Row]]:
    """The rows of ``statement`` in ``key`` order, as keyset batches of at most BATCH rows."""
    after = None
    while True:
        page = statement if after is None else statement.where(key > after)
        rows = _fetch(source, page.order_by(key).limit(BATCH))
        if rows:
            yield rows
        if len(rows) < BATCH:
            return
        after = rows[-1][0]


def _link_problem(row: Row, previous: Row | None) -> Problem:
    """Why ``row`` does not follow ``previous`` (None: it is first)."""
    if previous is None:
        return Problem(row.id, f"entry {row.id} is the first entry but does not start the chain: "
                               "the entries before it were removed")
    if row.prev_hash == previous.prev_hash:
        return Problem(previous.id, f"entry {previous.id} was inserted: it and entry {row.id} both claim "
                                    "to follow the same entry")
    if row.id == previous.id + 2:
        return Problem(row.id, f"entry {row.id} does not follow entry {previous.id}: "
                               f"entry {previous.id + 1} was removed")
    if row.id > previous.id + 2:
        return Problem(row.id, f"entry {row.id} does not follow entry {previous.id}: "
                               f"entries {previous.id + 1} to {row.id - 1} were removed")
    return Problem(row.id, f"entry {row.id} does not follow entry {previous.id}: an entry between them "
                           "was removed, or entries were renumbered")


def _entry_problem(row: Row, previous: Row | None) -> Problem:
    """How the chain breaks at ``row``, given the (intact) entry before it."""
    linked = row.prev_hash == (previous.hash if previous else GENESIS)
    intact = entry_hash(row.prev_hash, row) == row.hash
    if linked:
        return Problem(row.id, f"entry {row.id} was edited or forged: its content no longer matches "
                               "its hash")
    # An entry slipped in before this one takes its predecessor: this one's link (and, when the
    # ids behind it were shifted, its content) then fail, but the forged entry is the one to name.
    if intact or (previous is not None and row.prev_hash == previous.prev_hash):
        return _link_problem(row, previous)
    return Problem(row.id, f"entry {row.id} is not the entry written there: neither its content nor its "
                           "link matches (swapped, moved or forged)")


def _walk_chain(source: Source, report: VerifyReport) -> None:
    """Recompute the chain in id order; record the count, the last id and the first break."""
    previous = None
    for rows in _pages(source, select(EVENTS), EVENTS.c.id):
        for row in rows:
            # The hot loop of a million entries: the plain check first, the diagnosis only on a break.
            if (row.prev_hash != (previous.hash if previous else GENESIS)
                    or entry_hash(row.prev_hash, row) != row.hash):
                report.chain_break = _entry_problem(row, previous)
                # Past the break nothing is proven; only the size of the trail is still reported.
                report.entries, report.last_id = _fetch(
                    source, select(func.count(), func.max(EVENTS.c.id)).select_from(EVENTS))[0]
                return
            previous = row
        report.entries += len(rows)
        report.last_id = rows[-1].id


def _head_problem(head: Row, stored_hash: str | None, keys: dict[str, Ed25519PublicKey],
                  last_id: int | None) -> Problem | None:
    """What is wrong with one signed head, or None when it holds."""
    where = f"the head signed {head.signed_at:%Y-%m-%d %H:%M:%S} for entry {head.entry_id}"
    key = keys.get(head.key_id)
    if key is None:
        return Problem(head.entry_id, f"{where} was signed by key {head.key_id[:16]}..., which is not a "
                                      "known public key (forged, or pass that key's .pub file)")
    try:
        key.verify(base64.b64decode(head.signature),
                   head_payload(head.entry_id, head.hash, head.signed_at, head.reason))
    except (InvalidSignature, ValueError):
        return Problem(head.entry_id, f"{where}: its signature does not verify (forged or altered head)")
    if stored_hash is None and (last_id is None or head.entry_id > last_id):
        return None  # a cut-off tail, reported once against the last signed head
    if stored_hash is None:
        return Problem(head.entry_id, f"{where}: entry {head.entry_id} was removed")
    if stored_hash != head.hash:
        return Problem(head.entry_id, f"{where}: entry {head.entry_id} no longer has the signed hash "
                                      f"{head.hash}: the trail up to it was rewritten")
    return None


def _check_heads(source: Source, keys: dict[str, Ed25519PublicKey], report: VerifyReport) -> None:
    """Check every signed head; the furthest good one is the last signed head."""
    heads = (select(HEADS, EVENTS.c.hash.label("stored_hash"))
             .select_from(HEADS.outerjoin(EVENTS, EVENTS.c.id == HEADS.c.entry_id)))
    for head in (head for rows in _pages(source, heads, HEADS.c.id) for head in rows):
        report.heads += 1
        problem = _head_problem(head, head.stored_hash, keys, report.last_id)
        if problem is not None:
            if len(report.head_problems) < MAX_LISTED:
                report.head_problems.append(problem)
            else:
                report.unlisted += 1
            continue
        if report.last_head is None or head.entry_id >= report.last_head.entry_id:
            report.last_head = SignedHead(head.entry_id, head.hash, head.signed_at)
    last = report.last_head
    if last is not None and (report.last_id is None or last.entry_id > report.last_id):
        cut = f"entries after {report.last_id} were removed" if report.last_id else "every entry was removed"
        report.head_problems.insert(0, Problem(last.entry_id, f"{cut}: the last signed head names entry "
                                                              f"{last.entry_id} with hash {last.hash}"))


def verify_chain(source: Source, public_keys: Ed25519PublicKey | Iterable[Ed25519PublicKey]) -> VerifyReport:
    """Verify the whole trail of ``source`` (a session factory, a session or a connection)
    against the public key(s) that signed its heads."""
    if isinstance(public_keys, Ed25519PublicKey):
        public_keys = [public_keys]
    keys = {key_id(key): key for key in public_keys}
    report = VerifyReport()
    _walk_chain(source, report)
    _check_heads(source, keys, report)
    return report
