"""Search among the requested cards: keyset pages both ways and a count capped at COUNT_CAP.

Any page costs about the same among a million cards. A page is asked for by the sort key of the
row it follows (``after``) or precedes (``before``), or is the last page: never an offset. The
count is exact up to COUNT_CAP and "more than COUNT_CAP" beyond it, because counting a million
matches costs more than the page itself. SQLite keeps no statistics of ranges, so for a number
prefix with a date window the search itself picks the index whose range is the smaller one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, literal, select, tuple_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.visitors import InternalTraversal

from tasks.cards import CARD_NUMBER, MAX_NUMBER_LENGTH, CardState
from tasks.errors import CardflowError
from tasks.queries import SearchFilter, in_range, number_bounds, request_bounds
from tasks.store import Card, Reservation

COUNT_CAP = 1000
# A date window holding fewer requested cards than this (and fewer than the number prefix) is
# walked instead of the prefix on SQLite; counting this many index entries takes about 1 ms.
PROBE_LIMIT = 10_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
LAST_MICROS = (datetime(9999, 12, 31, tzinfo=UTC) - EPOCH) // MICROSECOND
MAX_ID = 2**63 - 1
DATE_KEY = re.compile(r"([0-9]{1,18})-([0-9]{1,19})")
DIRECTIONS = ("after", "before", "last")


class CursorError(CardflowError):
    """A page link that no page of this search can have: garbled, edited, or from another search."""


@dataclass(frozen=True)
class Cursor:
    """Which page: the one after or before a row's sort key (``key``), or the last one."""

    direction: str
    key: str = ""


@dataclass
class CardRow:
    """One line of the search result."""

    id: int
    number: str
    state: str
    requested_at: datetime
    reserved_by: int | None = None


@dataclass
class KeysetPage:
    """A page of matching cards, how many match (capped), and where the page lies among them."""

    items: list[CardRow]
    total: int
    capped: bool
    by_number: bool
    before: int = 0
    has_next: bool = False

    @property
    def has_previous(self) -> bool:
        """Whether matching cards come before this page."""
        return self.before > 0

    @property
    def first_position(self) -> int | None:
        """The first item's place among all matches (from 1), unless past the first COUNT_CAP."""
        return self.before + 1 if self.items and self.before <= COUNT_CAP else None

    @property
    def previous_key(self) -> str:
        """The cursor key of the Previous link: the first item's sort key."""
        return row_key(self.items[0], self.by_number)

    @property
    def next_key(self) -> str:
        """The cursor key of the Next link: the last item's sort key."""
        return row_key(self.items[-1], self.by_number)


class _Unindexed(ColumnElement):
    """A column SQLite must not look up in an index (written ``+column``); plain elsewhere."""

    inherit_cache = True
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]

    def __init__(self, column: Any) -> None:
        self.column = column
        self.type = column.type


@compiles(_Unindexed)
def _plain(element: _Unindexed, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.column, **kw)


@compiles(_Unindexed, "sqlite")
def _unary_plus(element: _Unindexed, compiler: Any, **kw: Any) -> str:
    return "+" + compiler.process(element.column, **kw)


def _unindexed(column: Any) -> Any:
    """``column`` kept out of SQLite's index choice (once is enough)."""
    return column if isinstance(column, _Unindexed) else _Unindexed(column)


def _utc(at: datetime) -> datetime:
    """A stored time as UTC (SQLite hands it back without its zone)."""
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def row_key(row: CardRow, by_number: bool) -> str:
    """A row's sort key as a cursor holds it: the number, or request time (µs) and id."""
    return row.number if by_number else f"{(_utc(row.requested_at) - EPOCH) // MICROSECOND}-{row.id}"


def _key_values(key: str, by_number: bool) -> tuple:
    """The sort key values in ``key``; CursorError unless it is a key of this search's order."""
    if by_number:
        if len(key) <= MAX_NUMBER_LENGTH and CARD_NUMBER.fullmatch(key):
            return (key,)
    else:
        match = DATE_KEY.fullmatch(key)
        if match and int(match[1]) <= LAST_MICROS and 0 < int(match[2]) <= MAX_ID:
            return EPOCH + int(match[1]) * MICROSECOND, int(match[2])
    raise CursorError("This page link does not fit this search (it was changed, or belongs to another "
                      "search); here is the first page.")


@dataclass(frozen=True)
class _Plan:
    """How to find the matches, written for the index that should walk them: the sort key, the
    filter's range on its first column (None: open) and the other conditions."""

    key: tuple
    low: Any
    high: Any
    others: list

    def where(self, values: tuple = (), forward: bool = True) -> list:
        """The conditions of the matches; with ``values``, only those past that sort key.

        Of two bounds on the same side of a column SQLite walks to one (the first written) and
        only checks the other, so the looser of the filter's and the key's is written ``+column``.
        """
        first = self.key[0]
        low, high, past = first, first, []
        if values:
            bound = self.low if forward else self.high
            tighter = bound is None or (values[0] >= bound if forward else values[0] < bound)
            if forward and tighter:
                low = _unindexed(first)
            elif tighter:
                high = _unindexed(first)
            key = self.key if tighter else (_unindexed(first), *self.key[1:])
            past = [_beyond(key, values, forward)]
        return [*self.others, *in_range(low, (self.low, None)), *in_range(high, (None, self.high)), *past]

    def values(self, row: CardRow) -> tuple:
        """``row``'s sort key values."""
        return (row.number,) if len(self.key) == 1 else (_utc(row.requested_at), row.id)


def _beyond(key: tuple, values: tuple, forward: bool) -> ColumnElement[bool]:
    """The columns ``key`` after (``forward``) or before ``values``."""
    if len(key) == 1:
        left, right = key[0], values[0]
    else:
        left = tuple_(*key)
        right = tuple_(*(literal(value, column.type) for value, column in zip(values, key, strict=True)))
    return left > right if forward else left < right


def _count(session: Session, where: list, limit: int) -> int:
    """How many rows match ``where``, counting no further than ``limit``."""
    return session.scalar(select(func.count()).select_from(
        select(Card.id).where(*where).limit(limit).subquery())) or 0


def _plan(session: Session, match: SearchFilter) -> _Plan:
    """The query shape for ``match``: by number with a prefix, else by request time and id.

    On SQLite, for a prefix with a date window, ``+column`` keeps the index of the larger range
    out, so the one range that is walked is the smaller: the window's when it holds fewer than
    PROBE_LIMIT cards and fewer than the prefix, else the prefix's (in number order, stopping
    at a page). PostgreSQL chooses well from its own statistics.
    """
    requested = Card.state == CardState.REQUESTED
    window, numbers = request_bounds(match), number_bounds(match)
    if not match.prefix:
        return _Plan((Card.requested_at, Card.id), *window, [requested])
    if session.get_bind().dialect.name != "sqlite" or window == (None, None):
        return _Plan((Card.number,), *numbers, [requested, *in_range(Card.requested_at, window)])
    in_window = _count(session, [requested, *in_range(Card.requested_at, window)], PROBE_LIMIT)
    if in_window < PROBE_LIMIT and in_window < _count(session, [requested, *in_range(Card.number, numbers)],
                                                        in_window + 1):
        return _Plan((_Unindexed(Card.number),), *numbers, [requested, *in_range(Card.requested_at, window)])
    return _Plan((Card.number,), *numbers, [requested, *in_range(_Unindexed(Card.requested_at), window)])


def _rows(session: Session, plan: _Plan, where: list, forward: bool, limit: int) -> list[CardRow]:
    """Up to ``limit`` rows of ``where`` from one end (the start when ``forward``), in page order."""
    order = [column if forward else column.desc() for column in plan.key]
    rows = session.execute(
        select(Card.id, Card.number, Card.state, Card.requested_at, Reservation.order_id)
        .outerjoin(Reservation, Reservation.card_id == Card.id)
        .where(*where).order_by(*order).limit(limit)).all()
    found = [CardRow(*row) for row in rows]
    return found if forward else found[::-1]


def search_requested(session: Session, match: SearchFilter, cursor: Cursor | None = None,
                     per_page: int = 50) -> KeysetPage:
    """One page of the requested cards matching ``match``, the first unless ``cursor`` says.

    Oldest request first; by card number when searching a number, which is what the operator
    reads down. A cursor whose key does not fit raises CursorError before any query; one whose
    rows have all gone (taken meanwhile) gives the last page, or the first.
    """
    by_number = bool(match.prefix)
    values = _key_values(cursor.key, by_number) if cursor and cursor.direction != "last" else ()
    plan = _plan(session, match)
    total = _count(session, plan.where(), COUNT_CAP + 1)
    page = KeysetPage([], min(total, COUNT_CAP), total > COUNT_CAP, by_number)
    if not total:
        return page
    direction = cursor.direction if cursor else "first"
    forward = direction in ("first", "after")
    rows = _rows(session, plan, plan.where(values, forward), forward, per_page + 1)
    page.items = rows[:per_page] if forward else rows[-per_page:]
    if not page.items and cursor is not None:
        return search_requested(session, match, Cursor("last") if direction == "after" else None, per_page)
    if forward:
        page.has_next = len(rows) > per_page
    elif direction == "before":
        page.has_next = _count(session, plan.where(plan.values(page.items[-1]), True), 1) > 0
    if direction != "first":
        page.before = _count(session, plan.where(plan.values(page.items[0]), False), COUNT_CAP + 1)
    return page


def number_letters(session: Session, requested_only: bool = True) -> tuple[str, ...]:
    """The letters before the dash of the smallest and the largest requested card number (of
    any card's when not ``requested_only``): one value when all those cards share them, two when
    they differ, none without cards.

    Numbers sort as text, so when the smallest and the largest share ``TC-``, every number
    between them starts with ``TC-`` too: two index seeks answer for a million cards.
    """
    numbers = select(Card.number)
    if requested_only:
        numbers = numbers.where(Card.state == CardState.REQUESTED)
    ends = [session.scalar(numbers.order_by(order).limit(1)) for order in (Card.number, Card.number.desc())]
    return tuple(dict.fromkeys(number.split("-", 1)[0] for number in ends if number))
