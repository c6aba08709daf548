"""A page number from a query argument: ASCII digits only, bounded; anything else is page 1."""

from __future__ import annotations

from collections.abc import Mapping

MAX_PAGE = 999_999


def page_number(args: Mapping[str, str], name: str = "page") -> int:
    """The page asked for in ``args[name]``; missing, zero, too large or not plain digits gives 1.

    ``str.isdigit`` alone is not enough: it accepts "²" and other Unicode digits that ``int``
    refuses, and an unbounded number would reach the database as a huge offset.
    """
    raw = args.get(name, "")
    if raw.isascii() and raw.isdigit() and len(raw) <= len(str(MAX_PAGE)) and int(raw) > 0:
        return int(raw)
    return 1
