"""What an operator types into the card search, read as people write it: dates and number prefixes.

Dates: ISO (2026-03-31, 2026-3-31, 2026/03/31), day first with dots (31.03.2026), with slashes
or dashes either way when only one reading is a date (31/03/2026, 03/31/2026), and compact
(20260331). 03/04/2026 could be two days, so it is refused and the operator asked for ISO.
Number prefixes: any case, with or without the dash (tc-0001, TC0001), or digits only (000123),
which the search completes with the letters of the installation's card numbers. Only ASCII
letters and digits count: other scripts' digits look alike but are not card numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from tasks.cards import MAX_NUMBER_LENGTH
from tasks.errors import CardflowError

MAX_TYPED_LENGTH = 40
EARLIEST_YEAR, LATEST_YEAR = 2000, 2099
ISO_FORMAT = "YYYY-MM-DD"

_YEAR_FIRST = re.compile(r"([0-9]{4})([-/.])([0-9]{1,2})\2([0-9]{1,2})")
_DAY_FIRST_DOTS = re.compile(r"([0-9]{1,2})\.([0-9]{1,2})\.([0-9]{4})")
_EITHER_WAY = re.compile(r"([0-9]{1,2})([/-])([0-9]{1,2})\2([0-9]{4})")
_COMPACT = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})")
_TWO_DIGIT_YEAR = re.compile(r"[0-9]{1,2}[./-][0-9]{1,2}[./-][0-9]{2}")
# Letters (1 to 8), an optional dash, digits (up to 12); or digits alone.
_NUMBER_PREFIX = re.compile(r"([A-Z]{1,8})(-?)([0-9]{0,12})|([0-9]{1,12})")


class TermError(CardflowError):
    """A search term that cannot be read; the message names the field and says what to type."""


@dataclass(frozen=True)
class NumberPrefix:
    """A card number prefix as typed: its letters (None when only digits were typed) and digits."""

    letters: str | None
    digits: str
    dash: bool = True  # the letters end where typed (a dash or digits follow them): TC- and not TCX-

    def written(self, letters: tuple[str, ...], label: str, what: str = "requested cards") -> str:
        """The prefix as card numbers are written (``TC-0001``); digits alone are completed with
        ``letters``: the letters of the numbers of the cards searched (``what``; see
        card_search.number_letters).

        A prefix is one range of the number index, which keeps a page fast among a million cards.
        Digits alone mean "any letters, then these digits": one range per letters prefix. An
        installation numbers its cards with one prefix (TC- unless it chose another), so when every
        requested card shares it, it is prepended and the search stays one range; when they do
        not, TermError asks for the letters rather than guess among them. Without requested cards
        nothing can match, whatever is searched.
        """
        if self.letters is not None:
            return f"{self.letters}-{self.digits}" if self.dash else self.letters
        if len(letters) > 1:
            raise TermError(f"{label}: {what} here start with different letters ({letters[0]}-, "
                            f"{letters[1]}-, ...); type them too, such as {letters[0]}-{self.digits}.")
        return f"{letters[0]}-{self.digits}" if letters else self.digits


def read_day(text: str, label: str) -> date | None:
    """The day in ``text`` (None when empty); TermError naming ``label`` when it is not one."""
    typed = text.strip()
    if not typed:
        return None
    example = f"enter a date as {ISO_FORMAT}, such as 2026-03-31"
    if len(typed) > MAX_TYPED_LENGTH or not typed.isascii():
        raise TermError(f"{label}: {example}.")
    if _TWO_DIGIT_YEAR.fullmatch(typed):
        raise TermError(f"{label}: {typed} has a year of two digits; {example}.")
    parts = _parts(typed, label, example)
    if parts is None:
        raise TermError(f"{label}: {example}.")
    year, month, day = parts
    if not EARLIEST_YEAR <= year <= LATEST_YEAR:
        raise TermError(f"{label}: {typed} is not a year from {EARLIEST_YEAR} to {LATEST_YEAR}; {example}.")
    try:
        return date(year, month, day)
    except ValueError:
        raise TermError(f"{label}: {typed} is not a day of the calendar; {example}.") from None


def _parts(typed: str, label: str, example: str) -> tuple[int, int, int] | None:
    """Year, month and day of a typed date in one of the accepted shapes, or None."""
    match = _YEAR_FIRST.fullmatch(typed)
    if match:
        return int(match[1]), int(match[3]), int(match[4])
    match = _COMPACT.fullmatch(typed)
    if match:
        return int(match[1]), int(match[2]), int(match[3])
    match = _DAY_FIRST_DOTS.fullmatch(typed)
    if match:
        return int(match[3]), int(match[2]), int(match[1])
    match = _EITHER_WAY.fullmatch(typed)
    if match is None:
        return None
    first, second, year = int(match[1]), int(match[3]), int(match[4])
    if first > 12 or first == second:
        return year, second, first
    if second > 12:
        return year, first, second
    raise TermError(f"{label}: {typed} could be {_spoken(year, second, first)} or "
                    f"{_spoken(year, first, second)}; {example}.")


def _spoken(year: int, month: int, day: int) -> str:
    """``2026-04-03`` style, for a message that shows both readings of an ambiguous date."""
    return f"{year:04d}-{month:02d}-{day:02d}"


def read_number_prefix(text: str, label: str) -> NumberPrefix | None:
    """The card number prefix in ``text`` (None when empty), in capitals; TermError naming
    ``label`` when it cannot start a card number."""
    typed = text.strip().upper()
    if not typed:
        return None
    if len(typed) > MAX_NUMBER_LENGTH:
        raise TermError(f"{label}: enter at most {MAX_NUMBER_LENGTH} characters.")
    match = _NUMBER_PREFIX.fullmatch(typed) if typed.isascii() else None
    if match is None:
        raise TermError(f"{label}: type the start of a card number, such as TC-000123 or 000123.")
    if match[4] is not None:
        return NumberPrefix(None, match[4])
    return NumberPrefix(match[1], match[3], dash=bool(match[2] or match[3]))
