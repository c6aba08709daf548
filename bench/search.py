"""Bench: Search among N requested cards, every kind of page (floor: p95 under 50 ms at 1,000,000);
then the SEARCH page (Status, card number, holder; holders by name) once the cards have a mix of
states and a fifth of them a holder among HOLDERS.

Each query is the whole search of one page, in a transaction of its own as a request reads it:
the capped count, the page by keyset and where it lies. Deep pages are reached by the cursor of
a random card, as following Next or Previous leaves it; the last page by its own link.
Run from the project root:
    .venv/bin/python -m bench.search [--cards 1000000] [--queries 200] [--database-url URL]
A PostgreSQL URL gets a schema of its own, dropped afterwards; the default is SQLite in a
temporary folder.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert, select, text, update

from engine import bootstrap
from engine.db import make_engine, make_sessions, unit_of_work
from tasks.card_search import CardRow, Cursor, row_key, search_requested
from tasks.demo import add_requested_cards
from tasks.holders import find_holders, holder_key, name_key
from tasks.object_search import MAX_HOLDERS, CardQuery, search_cards
from tasks.queries import SearchFilter
from tasks.store import Card, Holder, utcnow
from tests.conftest import make_settings, private_schema

FLOOR_MS = 50.0
CHUNK = 100_000
WINDOW_DAYS = 7
Case = Callable[[], tuple[SearchFilter, Cursor | None]]


@contextmanager
def database(url: str | None) -> Iterator[str | None]:
    """The URL to fill: a private schema on the PostgreSQL server at ``url``, or None (SQLite)."""
    with private_schema(url, "bench") if url else nullcontext(None) as private:
        yield private


def fill(sessions, cards: int) -> float:
    """Add ``cards`` requested cards in transactions of CHUNK; returns the seconds it took."""
    began = time.perf_counter()
    for done in range(0, cards, CHUNK):
        with unit_of_work(sessions) as session:
            add_requested_cards(session, min(CHUNK, cards - done), "Bench Organisation")
    return time.perf_counter() - began


def cases(sessions, cards: int, rng: random.Random) -> dict[str, Case]:
    """Each kind of page the operator can ask for: a function giving a random filter and cursor."""
    with unit_of_work(sessions) as session:
        sample = rng.sample(range(1, cards + 1), k=min(cards, 1000))
        rows = [CardRow(card_id, number, "requested", at) for card_id, number, at in session.execute(
            select(Card.id, Card.number, Card.requested_at).where(Card.id.in_(sample)))]
        newest = session.scalar(select(Card.requested_at).order_by(Card.requested_at.desc()).limit(1))
    days = 30  # tasks.demo spreads requests over the last 30 days

    def window(length: int = WINDOW_DAYS) -> dict:
        """A random stretch of ``length`` days within the requests."""
        start = newest.date() - timedelta(days=rng.randrange(0, days - length + 1))
        return {"requested_from": start - timedelta(days=length - 1), "requested_to": start}

    def prefix(digits: int) -> str:
        """A number prefix that ``10 ** (6 - digits)`` cards have (TC- and ``digits`` digits)."""
        return f"TC-{rng.randrange(0, min(10 ** digits, max(1, cards // 10 ** (6 - digits)))):0{digits}d}"

    def deep(direction: str = "after") -> Cursor:
        """The cursor of a random card, as Next (or Previous) leaves it on a deep page."""
        return Cursor(direction, row_key(rng.choice(rows), False))

    def deep_window() -> tuple[SearchFilter, Cursor]:
        """A random window and the cursor of a random card in it."""
        match = SearchFilter(**window())
        inside = [row for row in rows
                  if match.requested_from <= row.requested_at.date() <= match.requested_to]
        return match, Cursor("after", row_key(rng.choice(inside), False))

    def number_cursor(start: str) -> Cursor:
        """A cursor in the middle of the cards whose numbers start with ``start``."""
        return Cursor("after", f"{start}{rng.randrange(0, 10 ** (9 - len(start))):0{9 - len(start)}d}")

    def deep_prefix() -> tuple[SearchFilter, Cursor]:
        start = prefix(2)
        return SearchFilter(number=start), number_cursor(start)

    def prefix_window_deep() -> tuple[SearchFilter, Cursor]:
        start = prefix(2)
        return SearchFilter(number=start, **window()), number_cursor(start)

    return {
        "first page, no filter": lambda: (SearchFilter(), None),
        "Next from a random card, no filter": lambda: (SearchFilter(), deep()),
        "Previous from a random card, no filter": lambda: (SearchFilter(), deep("before")),
        "last page, no filter": lambda: (SearchFilter(), Cursor("last")),
        "number prefix (100 cards)": lambda: (SearchFilter(number=prefix(4)), None),
        "number prefix (10,000), deep page": deep_prefix,
        "number prefix (10,000), last page": lambda: (SearchFilter(number=prefix(2)), Cursor("last")),
        f"{WINDOW_DAYS}-day window, first page": lambda: (SearchFilter(**window()), None),
        f"{WINDOW_DAYS}-day window, deep page": deep_window,
        f"{WINDOW_DAYS}-day window, last page": lambda: (SearchFilter(**window()), Cursor("last")),
        f"prefix (100) + {WINDOW_DAYS}-day window":
            lambda: (SearchFilter(number=prefix(4), **window()), None),
        f"prefix (10,000) + {WINDOW_DAYS}-day window":
            lambda: (SearchFilter(number=prefix(2), **window()), None),
        f"prefix (10,000) + {WINDOW_DAYS}-day, deep page": prefix_window_deep,
        f"prefix (10,000) + {WINDOW_DAYS}-day, last page":
            lambda: (SearchFilter(number=prefix(2), **window()), Cursor("last")),
        "prefix (100,000) + 1-day window": lambda: (SearchFilter(number=prefix(1), **window(1)), None),
        "prefix (100,000) + 1-day, last page":
            lambda: (SearchFilter(number=prefix(1), **window(1)), Cursor("last")),
    }


HOLDERS = 100_000
SearchPage = Callable[[object], str]  # runs one SEARCH page's queries in a session; what it found


def mix_states(sessions, engine, cards: int) -> None:
    """Give the cards the states a running service has: a fifth assigned (each to one of HOLDERS
    holders), two fifths unassigned, the rest requested."""
    with unit_of_work(sessions) as session:
        now = utcnow()
        for start in range(0, HOLDERS, CHUNK):
            session.execute(insert(Holder.__table__), [
                {"identifier": f"H{n:07d}", "name": f"Holder {n:07d}",
                 "name_key": name_key(f"Holder {n:07d}"), "email": f"h{n}@example.org", "unit": "Bench",
                 "state": "active", "updated_at": now}
                for n in range(start + 1, min(start + CHUNK, HOLDERS) + 1)])
        session.execute(update(Card).where(Card.id % 5 != 0, Card.id % 5 != 1).values(state="unassigned"))
        session.execute(update(Card).where(Card.id % 5 == 0)
                        .values(state="assigned", holder_id=(Card.id // 5) % HOLDERS + 1))
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE cards"))
            connection.execute(text("VACUUM ANALYZE holders"))


def search_page_cases(cards: int, rng: random.Random) -> dict[str, SearchPage]:
    """Each kind of SEARCH page, as engine/web/search.py asks for it: the holder lookup (when a
    holder is typed), then the card page, or the holder page."""

    def number() -> str:
        return f"TC-{rng.randrange(1, cards + 1):06d}"

    def card_page(state=None, prefix="", holder="", after=None, before=None) -> SearchPage:
        def run(session) -> str:
            ids = None
            if holder:
                ids = tuple(match.id for match in find_holders(session, holder, limit=MAX_HOLDERS + 1))
            page = search_cards(session, CardQuery(state, prefix, ids), after=after, before=before)
            return f"{'more than ' if page.capped else ''}{page.total:,} cards"
        return run

    def holder_page(typed: str, deep: bool = False) -> SearchPage:
        def run(session) -> str:
            after = None
            if deep:
                after = holder_key(find_holders(session, f"H{rng.randrange(1, HOLDERS):07d}", limit=1)[0])
            return f"{len(find_holders(session, typed, after=after, limit=51))} holders on the page"
        return run

    def prefix_deep() -> SearchPage:
        start = number()[:5]
        return card_page("unassigned", start, after=f"{start}{rng.randrange(0, 10_000):04d}")

    return {
        "SEARCH cards, first page, any status": lambda: card_page(),
        "SEARCH cards, Next from a random card": lambda: card_page(after=number()),
        "SEARCH cards, Previous from a random card": lambda: card_page(before=number()),
        "SEARCH Status assigned, first page": lambda: card_page("assigned"),
        "SEARCH Status unassigned, deep page": lambda: card_page("unassigned", after=number()),
        "SEARCH Status requested, Previous deep": lambda: card_page("requested", before=number()),
        "SEARCH number prefix (100 cards)": lambda: card_page(prefix=number()[:7]),
        "SEARCH Status + prefix (10,000), deep": prefix_deep,
        "SEARCH holder by identifier": lambda: card_page(holder=f"H{rng.randrange(1, HOLDERS):07d}"),
        "SEARCH holder by name start (10 holders)":
            lambda: card_page(holder=f"Holder {rng.randrange(1, HOLDERS // 10):06d}"),
        "SEARCH holders by name start, first page": lambda: holder_page("Holder 0"),
        "SEARCH holders, Next from a random holder": lambda: holder_page("holder", deep=True),
    }


def time_search_page(sessions, case: Callable[[], SearchPage], queries: int) -> tuple[float, float, str]:
    """p50/p95 of ``queries`` SEARCH pages of ``case``, each in a transaction of its own."""
    samples, found = [], ""
    for _ in range(queries):
        run = case()
        began = time.perf_counter()
        with unit_of_work(sessions) as session:
            found = run(session)
        samples.append((time.perf_counter() - began) * 1000)
    return (*percentiles(samples), found)


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p95 of ``samples`` (milliseconds)."""
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[max(0, int(len(ordered) * 0.95) - 1)]


def time_case(sessions, case: Case, queries: int) -> tuple[float, float, str]:
    """p50/p95 of ``queries`` searches of ``case``, and what the last one found."""
    samples, found = [], ""
    for _ in range(queries):
        match, cursor = case()
        began = time.perf_counter()
        with unit_of_work(sessions) as session:
            page = search_requested(session, match, cursor)
        samples.append((time.perf_counter() - began) * 1000)
        found = f"{'more than ' if page.capped else ''}{page.total:,} matching"
    return (*percentiles(samples), found)


def main() -> None:
    """Fill the cards, then print one table of p50/p95 per kind of page against the floor."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cards", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200, help="searches per kind of page")
    parser.add_argument("--database-url", help="a PostgreSQL server; default: SQLite in a temporary folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, database(args.database_url) as url:
        settings = make_settings(Path(folder) / "instance", url)
        bootstrap.init_database(settings)
        engine = make_engine(settings.database_url)
        sessions = make_sessions(engine)
        seconds = fill(sessions, args.cards)
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.execute(text("VACUUM ANALYZE cards"))  # what autovacuum does after a load
        print(f"{engine.dialect.name}: {args.cards:,} requested cards created in {seconds:.1f} s "
              f"({args.cards / seconds:,.0f} a second)")
        rows = [(name, *time_case(sessions, case, args.queries))
                for name, case in cases(sessions, args.cards, random.Random(7)).items()]
        mix_states(sessions, engine, args.cards)
        rows += [(name, *time_search_page(sessions, case, args.queries))
                 for name, case in search_page_cases(args.cards, random.Random(11)).items()]
        engine.dispose()
    print(f"{'page':44s} {'p50 ms':>8s} {'p95 ms':>8s}  {'found (last query)':26s} "
          f"floor: p95 < {FLOOR_MS:.0f} ms")
    for name, p50, p95, found in rows:
        print(f"{name:44s} {p50:8.1f} {p95:8.1f}  {found:26s} {'ok' if p95 < FLOOR_MS else 'MISSED'}")


if __name__ == "__main__":
    main()
