"""Two texts side by side, line by line, with what changed marked: the data of the diff page."""

from __future__ import annotations

import difflib
from dataclasses import dataclass


@dataclass(frozen=True)
class DiffRow:
    """One row of a side-by-side diff; a side is None where the other side has lines alone."""

    kind: str  # equal | replace | delete | insert
    left_number: int | None
    left: str | None
    right_number: int | None
    right: str | None


def side_by_side(left: str, right: str) -> list[DiffRow]:
    """Rows pairing the lines of ``left`` and ``right``; the template escapes the text."""
    a, b = left.splitlines(), right.splitlines()
    rows: list[DiffRow] = []
    for kind, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        for offset in range(max(i2 - i1, j2 - j1)):
            i, j = i1 + offset, j1 + offset
            rows.append(DiffRow(kind, i + 1 if i < i2 else None, a[i] if i < i2 else None,
                                j + 1 if j < j2 else None, b[j] if j < j2 else None))
    return rows
