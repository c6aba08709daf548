"""Keyset pagination for lists that grow to millions of rows: "Older" and "Newer", never an offset.

A page is asked for by the id of the row it lies below (``before``, the Older link) or above
(``after``, the Newer link). The caller fetches one row more than it shows, newest first (below
``before``: the extra row is the oldest; above ``after``: the newest); ``keyset_page`` turns that
into the page and its two links.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Ids are database integers; anything longer than this is no id.
MAX_ID_DIGITS = 12


@dataclass(frozen=True)
class Position:
    """Where a page lies: below ``before``, above ``after``, or (both None) at the newest rows."""

    before: int | None = None
    after: int | None = None


@dataclass(frozen=True)
class KeysetPage:
    """The rows of a page, newest first, and the ids for its Newer and Older links (None: no link)."""

    items: list[Any]
    newer: int | None
    older: int | None


def _id(raw: str) -> int | None:
    """An id from a query argument: plain ASCII digits, bounded; anything else is None."""
    if raw.isascii() and raw.isdigit() and len(raw) <= MAX_ID_DIGITS:
        return int(raw)
    return None


def position(args: Mapping[str, str]) -> Position:
    """The page asked for in ``args``; a missing or garbled value means the newest page."""
    after = _id(args.get("after", ""))
    if after is not None:
        return Position(after=after)
    return Position(before=_id(args.get("before", "")))


def keyset_page(rows: Sequence[Any], where: Position, limit: int) -> KeysetPage:
    """The page of ``rows`` (up to ``limit + 1``, newest first, fetched as the module says)."""
    more = len(rows) > limit
    if where.after is not None:
        items = list(rows[len(rows) - limit:] if more else rows)
        return KeysetPage(items, newer=items[0].id if more and items else None,
                          older=items[-1].id if items else None)
    items = list(rows[:limit])
    return KeysetPage(items, newer=items[0].id if where.before is not None and items else None,
                      older=items[-1].id if more else None)
