"""Holders, the people who get temporary cards: importing them from a CSV file, finding them.

An import is all or nothing: every row is checked first, and one bad row (with its line number)
refuses the whole file. It is an upsert keyed by the identifier, so importing the same file twice
changes nothing the second time. The file is hostile until checked: its size, encoding, cell
lengths, duplicate identifiers and cells a spreadsheet would run as a formula are all refused.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field

from sqlalchemy import insert, literal, select, tuple_, update
from sqlalchemy.orm import Session

from tasks.errors import CardflowError, NotFoundError
from tasks.store import Assignment, Card, Holder, utcnow

HEADER = ("identifier", "name", "email", "unit")
OPTIONAL = ("state",)
STATES = ("active", "inactive")
MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_ROWS = 200_000
MAX_PROBLEMS = 20
LIMITS = {"identifier": 64, "name": 200, "email": 254, "unit": 200}
# An identifier goes into URLs and file names of letters: letters, digits and . _ - only.
IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
EMAIL = re.compile(rf"[^@\s]{{1,64}}@{LABEL}(?:\.{LABEL})+")
# What a spreadsheet runs as a formula when the holders are exported and opened again.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CHUNK = 500


class HolderImportError(CardflowError):
    """The file cannot be imported; ``problems`` are its lines' problems, first ones first."""

    def __init__(self, problems: list[str], total: int | None = None) -> None:
        total = len(problems) if total is None else total
        shown = problems[:MAX_PROBLEMS]
        more = f"\n... and {total - len(shown)} more problems" if total > len(shown) else ""
        super().__init__("Nothing was imported:\n" + "\n".join(shown) + more)
        self.problems = problems


class HolderError(CardflowError):
    """A holder cannot get a card, or cannot be found; the message says which and why."""


@dataclass(frozen=True)
class HolderRow:
    """One checked row of the file."""

    line: int
    identifier: str
    name: str
    email: str
    unit: str
    state: str


@dataclass
class ImportReport:
    """What an import did."""

    added: int = 0
    changed: int = 0
    unchanged: int = 0
    changed_identifiers: list[str] = field(default_factory=list)


def name_key(name: str) -> str:
    """The form of a name that search compares: case-folded, accents kept, spaces collapsed."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())[:200]


def _decode(data: bytes) -> str:
    """The file as text: UTF-8 (a byte order mark is allowed); otherwise the line at fault."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise HolderImportError([f"line {line}: the file is not UTF-8 text (byte {error.start + 1}); "
                                 "save it as CSV UTF-8 and import it again"]) from None


def _cell_problem(column: str, value: str) -> str | None:
    """What is wrong with one cell, or None."""
    if len(value) > LIMITS[column]:
        return f"{column} is longer than {LIMITS[column]} characters"
    if any(unicodedata.category(char) in ("Cc", "Cf") for char in value):
        return f"{column} holds a control character"
    if value.startswith(FORMULA_START):
        return f"{column} starts with {value[0]!r}, which a spreadsheet would run as a formula"
    if column == "identifier" and not IDENTIFIER.fullmatch(value):
        return "identifier must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
    if column == "name" and not value:
        return "name is empty"
    if column == "email" and not EMAIL.fullmatch(value):
        return f"email {value[:60]!r} is not an e-mail address"
    return None


def read_holders_csv(data: bytes) -> list[HolderRow]:
    """The checked rows of a holders file; HolderImportError lists every bad line (none imported).

    The header must be ``identifier,name,email,unit`` (an optional fifth column ``state``:
    active or inactive, default active).
    """
    if len(data) > MAX_FILE_BYTES:
        raise HolderImportError([f"the file has {len(data):,} bytes; at most {MAX_FILE_BYTES:,} are imported "
                                 "at once: split it"])
    text = _decode(data)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    problems: list[str] = []
    try:
        header = [cell.strip().lower() for cell in next(reader, [])]
    except csv.Error as error:
        raise HolderImportError([f"line 1: {error}"]) from None
    if tuple(header) not in (HEADER, HEADER + OPTIONAL):
        raise HolderImportError([f"line 1: the header must be {','.join(HEADER)} (optionally ,state), "
                                 f"not {','.join(header)[:200]!r}"])
    rows: list[HolderRow] = []
    first_line: dict[str, int] = {}
    count = 0
    try:
        for cells in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            count += 1
            if count > MAX_ROWS:
                raise HolderImportError([f"line {line}: the file has more than {MAX_ROWS:,} holders; "
                                         "split it"])
            row, problem = _row(line, cells, len(header))
            if problem is None and row.identifier in first_line:
                problem = (f"identifier {row.identifier} is also on line {first_line[row.identifier]}; "
                           "each holder once")
            if problem is not None:
                problems.append(f"line {line}: {problem}")
                continue
            first_line[row.identifier] = line
            rows.append(row)
    except csv.Error as error:
        problems.append(f"line {reader.line_num}: {error}")
    if problems:
        raise HolderImportError(problems)
    return rows


def _row(line: int, cells: list[str], width: int) -> tuple[HolderRow | None, str | None]:
    """One line's holder, or what is wrong with it."""
    if len(cells) != width:
        return None, f"{len(cells)} columns, the header has {width}"
    values = dict(zip(HEADER + OPTIONAL, (cell.strip() for cell in cells), strict=False))
    for column in HEADER:
        problem = _cell_problem(column, values[column])
        if problem:
            return None, problem
    state = values.get("state", "").lower() or "active"
    if state not in STATES:
        return None, f"state must be active or inactive, not {values['state'][:20]!r}"
    return HolderRow(line, values["identifier"], values["name"], values["email"], values["unit"], state), None


def import_holders(session: Session, rows: list[HolderRow]) -> ImportReport:
    """Add the new holders and update the changed ones, keyed by identifier (in the caller's
    transaction: nothing is kept if anything fails)."""
    report = ImportReport()
    now = utcnow()
    table = Holder.__table__
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start:start + CHUNK]
        existing = {row.identifier: row for row in session.execute(
            select(table).where(table.c.identifier.in_([item.identifier for item in chunk])))}
        new = []
        for item in chunk:
            values = {"name": item.name, "name_key": name_key(item.name), "email": item.email,
                      "unit": item.unit, "state": item.state}
            old = existing.get(item.identifier)
            if old is None:
                new.append({"identifier": item.identifier, "updated_at": now, **values})
            elif any(getattr(old, key) != value for key, value in values.items()):
                session.execute(update(table).where(table.c.id == old.id).values(updated_at=now, **values))
                report.changed += 1
                report.changed_identifiers.append(item.identifier)
            else:
                report.unchanged += 1
        if new:
            session.execute(insert(table), new)
            report.added += len(new)
    return report


@dataclass(frozen=True)
class HolderMatch:
    """A holder in a list of matches."""

    id: int
    identifier: str
    name: str
    email: str
    unit: str
    state: str


def _match(row) -> HolderMatch:
    return HolderMatch(row.id, row.identifier, row.name, row.email, row.unit, row.state)


HOLDER_KEY = re.compile(r"([1-9][0-9]{0,17})")


def find_holders(session: Session, typed: str, after: tuple[str, int] | None = None, limit: int = 20,
                 state: str | None = None) -> list[HolderMatch]:
    """Holders whose name starts with ``typed`` (any case), by name, up to ``limit``; on the first
    page, the holder whose identifier is ``typed`` comes first. Empty ``typed``: every holder.

    ``after`` is the (name key, id) of the last holder of the previous page (a keyset page): each
    page is one range of the (name_key, id) index, however many holders there are.
    """
    key = name_key(typed)
    table = Holder.__table__
    query = select(table)
    if key:
        query = query.where(table.c.name_key < key + "\U0010ffff")
    if after is not None and after[0] >= key:
        # The cursor alone is the lower bound: SQLite walks one bound of a column, and with the
        # prefix's too it would read every holder between the prefix and the cursor.
        past = tuple_(literal(after[0], table.c.name_key.type), literal(after[1], table.c.id.type))
        query = query.where(tuple_(table.c.name_key, table.c.id) > past)
    elif key:
        query = query.where(table.c.name_key >= key)
    if state is not None:
        query = query.where(table.c.state == state)
    query = query.order_by(table.c.name_key, table.c.id).limit(limit)
    found = [_match(row) for row in session.execute(query)]
    identifier = typed.strip()
    if after is None and identifier and IDENTIFIER.fullmatch(identifier):
        exact = session.execute(select(table).where(table.c.identifier == identifier)).first()
        if exact is not None and (state is None or exact.state == state):
            found = [_match(exact), *(item for item in found if item.id != exact.id)][:limit]
    return found


def holder_key(match: HolderMatch) -> tuple[str, int]:
    """The keyset position of a holder in name order."""
    return name_key(match.name), match.id


def holder_by_id(session: Session, holder_id: int) -> Holder:
    """Holder ``holder_id``; NotFoundError when there is none."""
    holder = session.get(Holder, holder_id)
    if holder is None:
        raise NotFoundError(f"There is no holder {holder_id}; search for the holder again.")
    return holder


def read_holder_id(value: object) -> int:
    """A holder id as posted or passed; HolderError for anything else (a tampered post)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63:
        return value
    if isinstance(value, str) and HOLDER_KEY.fullmatch(value):
        return int(value)
    raise HolderError("The chosen holder is not a holder of this list; search and select the holder again.")


@dataclass(frozen=True)
class HeldCard:
    """A card a holder holds or held: the card as it is now, and that assignment's dates."""

    number: str
    state: str
    valid_until: object
    assigned_at: object
    assigned_by: str
    ended_at: object
    end_reason: str | None


MAX_LISTED = 200


def holder_cards(session: Session, holder_id: int) -> list[HeldCard]:
    """Every card assigned to the holder (at most MAX_LISTED), the latest assignment first."""
    rows = session.execute(
        select(Card.number, Card.state, Card.valid_until, Assignment.assigned_at, Assignment.assigned_by,
               Assignment.ended_at, Assignment.end_reason)
        .join(Card, Card.id == Assignment.card_id).where(Assignment.holder_id == holder_id)
        .order_by(Assignment.assigned_at.desc(), Assignment.id.desc()).limit(MAX_LISTED)).all()
    return [HeldCard(*row) for row in rows]
