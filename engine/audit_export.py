"""Reading the audit trail for auditors: filters, a page of entries, and streamed CSV or JSON.

One query builder (``audit_query``) serves the CLI export and the auditor's web console. Every
filter is answered by an index (``card``, ``order_id``, ``actor``, ``action`` each with ``id``;
``at``), and every read walks ``id`` with keyset batches, so a page or an export costs the same
whether the trail holds a thousand entries or millions. Streams read one short transaction per
batch (no lock held while the reader is slow) and stop at the last entry that existed when they
began, so an export is one consistent prefix of the chain.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy import Row, Select, func, select, tuple_
from sqlalchemy.orm import Session, sessionmaker

from engine.store import AuditEvent

BATCH = 1000
# The exported columns, in order; the hashes let anyone re-check an unfiltered export offline.
COLUMNS = ("id", "at", "actor", "action", "instance_id", "order_id", "card", "detail", "prev_hash", "hash")
# An order id is a database integer: anything larger cannot name an order.
MAX_ORDER_ID = 2**31 - 1


class AuditFilterError(ValueError):
    """A filter value that cannot be used; the message names the filter and what it expects."""


@dataclass(frozen=True)
class AuditFilters:
    """Which entries to read; None means any. ``since`` is inclusive, ``until`` exclusive (UTC)."""

    card: str | None = None
    order_id: int | None = None
    actor: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    @classmethod
    def parse(cls, card: str | None = None, order: str | None = None, user: str | None = None,
              action: str | None = None, since: str | None = None, until: str | None = None) -> AuditFilters:
        """Filters from text as typed on the command line or in a form; blank means any.

        Raises AuditFilterError for an order that is not a number or a time that is not ISO 8601.
        """
        filters = cls(card=_text(card), order_id=_order_id(order), actor=_text(user), action=_text(action),
                      since=_moment("since", since), until=_moment("until", until))
        if filters.since and filters.until and filters.since >= filters.until:
            raise AuditFilterError(f"since ({filters.since.isoformat()}) must be before until "
                                   f"({filters.until.isoformat()}).")
        return filters


def _text(value: str | None) -> str | None:
    """A text filter, stripped; blank means no filter."""
    value = (value or "").strip()
    return value or None


def _order_id(value: str | None) -> int | None:
    """An order number: ASCII digits only (no sign, no ² or other Unicode digits)."""
    value = (value or "").strip()
    if not value:
        return None
    if not (value.isascii() and value.isdigit() and 0 < int(value) <= MAX_ORDER_ID):
        raise AuditFilterError(f"order must be an order number such as 42, not {value!r}.")
    return int(value)


def _moment(name: str, value: str | None) -> datetime | None:
    """An ISO 8601 date or time; without a zone it is UTC."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise AuditFilterError(f"{name} must be an ISO 8601 date or time such as 2026-11-24 or "
                               f"2026-11-24T16:20:00Z, not {value!r}.") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def audit_query(filters: AuditFilters) -> Select:
    """The select of the entries ``filters`` match, unordered (callers add their keyset)."""
    query = select(AuditEvent)
    if filters.card is not None:
        query = query.where(AuditEvent.card == filters.card)
    if filters.order_id is not None:
        query = query.where(AuditEvent.order_id == filters.order_id)
    if filters.actor is not None:
        query = query.where(AuditEvent.actor == filters.actor)
    if filters.action is not None:
        query = query.where(AuditEvent.action == filters.action)
    if filters.since is not None:
        query = query.where(AuditEvent.at >= filters.since)
    if filters.until is not None:
        query = query.where(AuditEvent.at < filters.until)
    return query


def _utc(moment: datetime) -> datetime:
    """A stored time as aware UTC (SQLite gives it back without its zone)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _past(filters: AuditFilters, at: datetime, entry_id: int, older: bool) -> Select:
    """The matching entries older (or newer) than the entry at position (``at``, ``entry_id``).

    The position's time bound takes the place of a looser ``until`` (or ``since``): SQLite reads
    an index range up to only one bound on each side of a column, and may pick the looser one.
    """
    position = tuple_(AuditEvent.at, AuditEvent.id)
    if older:
        looser = filters.until is None or at < filters.until
        query = audit_query(replace(filters, until=None) if looser else filters)
        return query.where(AuditEvent.at <= at, position < (at, entry_id))
    looser = filters.since is None or at >= filters.since
    query = audit_query(replace(filters, since=None) if looser else filters)
    return query.where(AuditEvent.at >= at, position > (at, entry_id))


def filtered_entries(session: Session, filters: AuditFilters, before_id: int | None = None,
                     limit: int = 50, after_id: int | None = None) -> list[AuditEvent]:
    """One page of matching entries, newest first (by time, then id): the newest ones, those just
    older than entry ``before_id`` (the next page: ``before_id=page[-1].id``), or those just newer
    than entry ``after_id`` (the page before: ``after_id=page[0].id``). An unknown id: no entries.

    Every filter's index runs (filter, at, id), so each page, a time range's included, is one
    index range read from one end, however many entries match.
    """
    newest_first = (AuditEvent.at.desc(), AuditEvent.id.desc())
    if before_id is None and after_id is None:
        return list(session.scalars(audit_query(filters).order_by(*newest_first).limit(limit)))
    entry_id = before_id if before_id is not None else after_id
    at = session.scalar(select(AuditEvent.at).where(AuditEvent.id == entry_id))
    if at is None:
        return []
    if before_id is not None:
        query = _past(filters, _utc(at), entry_id, older=True).order_by(*newest_first)
        return list(session.scalars(query.limit(limit)))
    query = _past(filters, _utc(at), entry_id, older=False).order_by(AuditEvent.at, AuditEvent.id)
    return list(reversed(session.scalars(query.limit(limit)).all()))


def iter_entries(sessions: sessionmaker[Session], filters: AuditFilters,
                 batch: int = BATCH) -> Iterator[Row]:
    """Every matching entry (the ``COLUMNS`` of each) oldest first, up to the last entry that
    existed at the start, read in keyset batches of ``batch``, one short transaction each."""
    with sessions() as session:
        last = session.scalar(select(func.max(AuditEvent.id)))
    if last is None:
        return
    columns = [getattr(AuditEvent, name) for name in COLUMNS]
    query = audit_query(filters).with_only_columns(*columns).where(AuditEvent.id <= last)
    after: int | None = None
    while True:
        page = query if after is None else query.where(AuditEvent.id > after)
        with sessions() as session:
            rows = session.execute(page.order_by(AuditEvent.id).limit(batch)).all()
        yield from rows
        if len(rows) < batch:
            return
        after = rows[-1].id


def _record(row: Row) -> dict:
    """An entry as plain JSON values: the time in ISO 8601 UTC, the detail as stored."""
    record = row._asdict()
    record["at"] = _utc(record["at"]).isoformat(timespec="microseconds")
    record["detail"] = record["detail"] or {}
    return record


def stream_csv(sessions: sessionmaker[Session], filters: AuditFilters) -> Iterator[str]:
    """The matching entries as CSV lines (a header first); ``detail`` is a JSON cell.

    Values are written exactly as stored (no spreadsheet-formula escaping): this is evidence,
    and its hashes must still check out.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def line(values) -> str:
        """One CSV line of ``values`` (quoting as the csv module does)."""
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(values)
        return buffer.getvalue()

    yield line(COLUMNS)
    for row in iter_entries(sessions, filters):
        record = _record(row)
        record["detail"] = json.dumps(record["detail"], sort_keys=True, ensure_ascii=False)
        yield line(["" if record[name] is None else record[name] for name in COLUMNS])


def stream_json(sessions: sessionmaker[Session], filters: AuditFilters) -> Iterator[str]:
    """The matching entries as one JSON array, written an entry at a time."""
    yield "["
    separator = "\n"
    for row in iter_entries(sessions, filters):
        yield separator + json.dumps(_record(row), ensure_ascii=False)
        separator = ",\n"
    yield "\n]\n"
