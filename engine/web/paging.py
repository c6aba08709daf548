"""Page positions from query arguments: a page number, or a keyset cursor; hostile input is refused.

A page number is ASCII digits only, bounded; anything else is page 1. A cursor (``after=KEY``,
``before=KEY`` or ``last=1``) is bounded printable ASCII, one at most; anything else is a
CursorError, which the page shows with the first page.
"""

from __future__ import annotations

from collections.abc import Mapping

from tasks.card_search import DIRECTIONS, Cursor, CursorError

MAX_PAGE = 999_999
MAX_KEY_LENGTH = 64


def page_number(args: Mapping[str, str], name: str = "page") -> int:
    """The page asked for in ``args[name]``; missing, zero, too large or not plain digits gives 1.

    ``str.isdigit`` alone is not enough: it accepts "²" and other Unicode digits that ``int``
    refuses, and an unbounded number would reach the database as a huge offset.
    """
    raw = args.get(name, "")
    if raw.isascii() and raw.isdigit() and len(raw) <= len(str(MAX_PAGE)) and int(raw) > 0:
        return int(raw)
    return 1


def page_cursor(args: Mapping[str, str]) -> Cursor | None:
    """The keyset page asked for in ``args``, or None for the first page.

    Raises CursorError for two cursors at once, ``last`` other than 1, or a key that is empty,
    longer than MAX_KEY_LENGTH or not printable ASCII; whether the key fits the search is for
    the search to say.
    """
    given = [name for name in DIRECTIONS if name in args]
    if not given:
        return None
    raw = args.get(given[0], "")
    if len(given) == 1:
        if given[0] == "last" and raw == "1":
            return Cursor("last")
        if given[0] != "last" and 0 < len(raw) <= MAX_KEY_LENGTH and raw.isascii() and raw.isprintable():
            return Cursor(given[0], raw)
    raise CursorError("This page link is not valid (it was changed or cut short); here is the first page.")
