"""Search pages by keyset on both databases: every match once and in order, both ways, any page."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from itertools import product

import pytest
from sqlalchemy import event, func, select, update

from engine import bootstrap
from engine.db import make_engine, make_sessions, unit_of_work
from tasks.card_search import COUNT_CAP, Cursor, CursorError, KeysetPage, search_requested
from tasks.demo import add_requested_cards
from tasks.queries import SearchFilter
from tasks.store import Card
from tests.conftest import make_settings

START = datetime(2026, 3, 1, tzinfo=UTC)
TIED = START + timedelta(days=3, hours=7)  # cards 10 to 19 were requested at the same instant
PER_PAGE = 4
FILTERS = {
    "no filter": SearchFilter(),
    "a date window": SearchFilter(requested_from=date(2026, 3, 3), requested_to=date(2026, 3, 5)),
    "a number prefix": SearchFilter(number=" tc-00002 "),
    "a broad prefix, a narrow window": SearchFilter("TC-0000", date(2026, 3, 4), date(2026, 3, 4)),
    "a narrow prefix, a broad window": SearchFilter("TC-00005", date(2026, 3, 1), date(2026, 3, 12)),
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def sessions(request, tmp_path) -> Iterator:
    """Sessions on a migrated, empty database: SQLite, then PostgreSQL (a schema of its own)."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    settings = make_settings(tmp_path / "instance", url)
    bootstrap.init_database(settings)
    engine = make_engine(settings.database_url)
    yield make_sessions(engine)
    engine.dispose()


@pytest.fixture
def cards(sessions) -> list[tuple[int, str, datetime]]:
    """60 requested cards spread over 12 days out of number order, ten of them at one instant;
    returns (id, number, requested_at) of each."""
    with unit_of_work(sessions) as session:
        add_requested_cards(session, 60, "Test Organisation")
        for card_id in range(1, 61):
            at = TIED if 10 <= card_id < 20 else START + timedelta(hours=(card_id * 37) % 60 * 5)
            session.execute(update(Card).where(Card.id == card_id).values(requested_at=at))
    with unit_of_work(sessions) as session:
        return [(row.id, row.number, _utc(row.requested_at))
                for row in session.execute(select(Card.id, Card.number, Card.requested_at))]


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def expected(cards, match: SearchFilter) -> list[str]:
    """The numbers ``match`` should list, in the order the operator reads them."""
    low = datetime.combine(match.requested_from, datetime.min.time(), UTC) if match.requested_from else None
    high = datetime.combine(match.requested_to + timedelta(days=1), datetime.min.time(), UTC) \
        if match.requested_to else None
    rows = [row for row in cards if row[1].startswith(match.prefix) and (low is None or row[2] >= low)
            and (high is None or row[2] < high)]
    rows.sort(key=(lambda row: row[1]) if match.prefix else (lambda row: (row[2], row[0])))
    return [row[1] for row in rows]


def page(sessions, match: SearchFilter, cursor: Cursor | None = None, per_page: int = PER_PAGE) -> KeysetPage:
    """One page, in a transaction of its own as a request would read it."""
    with unit_of_work(sessions) as session:
        return search_requested(session, match, cursor, per_page)


def numbers(result: KeysetPage) -> list[str]:
    return [row.number for row in result.items]


def forward(sessions, match: SearchFilter, per_page: int = PER_PAGE) -> list[KeysetPage]:
    """Every page from the first, following Next."""
    pages = [page(sessions, match, per_page=per_page)]
    while pages[-1].has_next:
        pages.append(page(sessions, match, Cursor("after", pages[-1].next_key), per_page))
    return pages


@pytest.mark.parametrize("name", FILTERS)
def test_next_visits_every_match_once_in_order_and_previous_gives_the_same_pages(sessions, cards, name):
    match = FILTERS[name]
    wanted = expected(cards, match)
    assert len(wanted) > 2 * PER_PAGE, "the filter should span several pages"
    pages = forward(sessions, match)
    assert [number for result in pages for number in numbers(result)] == wanted
    assert [result.first_position for result in pages] == list(range(1, len(wanted) + 1, PER_PAGE))
    assert all(result.total == len(wanted) and not result.capped for result in pages)
    assert not pages[0].has_previous and all(result.has_previous for result in pages[1:])
    for later, earlier in zip(pages[1:], pages[:-1], strict=True):
        back = page(sessions, match, Cursor("before", later.previous_key))
        assert numbers(back) == numbers(earlier)
        assert (back.has_previous, back.has_next, back.first_position) == \
               (earlier.has_previous, True, earlier.first_position)


@pytest.mark.parametrize("name", FILTERS)
def test_the_last_page_holds_the_last_matches(sessions, cards, name):
    match = FILTERS[name]
    wanted = expected(cards, match)
    last = page(sessions, match, Cursor("last"))
    assert numbers(last) == wanted[-PER_PAGE:]
    assert last.has_previous and not last.has_next and last.first_position == len(wanted) - PER_PAGE + 1
    before = page(sessions, match, Cursor("before", last.previous_key))
    assert numbers(before) == wanted[-2 * PER_PAGE:-PER_PAGE]


def test_ties_in_request_time_are_ordered_by_id(sessions, cards):
    listed = [number for result in forward(sessions, SearchFilter()) for number in numbers(result)]
    tied = [f"TC-{card_id:06d}" for card_id in range(10, 20)]
    first = listed.index(tied[0])
    assert listed[first:first + 10] == tied


def test_a_page_link_whose_cards_have_gone_gives_the_last_or_first_page(sessions, cards):
    match = FILTERS["a number prefix"]
    wanted = expected(cards, match)
    beyond = page(sessions, match, Cursor("after", "TC-999999"))
    assert numbers(beyond) == wanted[-PER_PAGE:] and not beyond.has_next
    ahead = page(sessions, match, Cursor("before", "TC-000001"))
    assert numbers(ahead) == wanted[:PER_PAGE] and not ahead.has_previous


def test_no_match(sessions, cards):
    result = page(sessions, SearchFilter(number="ZZ"), Cursor("last"))
    assert (result.items, result.total, result.has_previous, result.has_next) == ([], 0, False, False)


def test_beyond_the_cap_the_count_says_more_and_every_card_is_still_reached(sessions):
    with unit_of_work(sessions) as session:
        add_requested_cards(session, COUNT_CAP + 100, "Test Organisation")
    pages = forward(sessions, SearchFilter(), per_page=50)
    listed = [number for result in pages for number in numbers(result)]
    assert len(listed) == len(set(listed)) == COUNT_CAP + 100
    assert all(result.capped and result.total == COUNT_CAP for result in pages)
    # Positions are known up to the cap: page 21 starts at card 1,001, page 22 somewhere past it.
    assert [result.first_position for result in pages[19:]] == [951, 1001, None]
    last = page(sessions, SearchFilter(), Cursor("last"), per_page=50)
    assert numbers(last) == listed[-50:] and last.first_position is None and not last.has_next


DATE_ORDER_HOSTILE = [
    "garbage", "1' OR '1'='1", "1;DROP TABLE cards", "9" * 40, "99999999999999999999-1",
    "253402300800000000-1", "1-0", "1-99999999999999999999", "\uff11\uff12-3", "\u00b2-3", "-1-5", "1.5-3",
    "1-2-3", " 1-2", "1-2\n", "", "TC-000001",
]
NUMBER_ORDER_HOSTILE = [
    "1700000000000000-5", "tc-000001", "TC-000001'; DROP TABLE cards;--", "TC-", "X" * 50, "TC-0000001\x00",
    "TC-\uff11",
]


def test_a_key_that_does_not_fit_the_search_is_refused_before_any_query(sessions, cards):
    statements = []

    def record(connection, cursor, statement, *args):
        statements.append(statement)

    tried = [(SearchFilter(), key) for key in DATE_ORDER_HOSTILE] + \
            [(SearchFilter(number="TC-0"), key) for key in NUMBER_ORDER_HOSTILE]
    with unit_of_work(sessions) as session:
        event.listen(session.get_bind(), "before_cursor_execute", record)
        for (match, key), direction in product(tried, ("after", "before")):
            with pytest.raises(CursorError, match="This page link does not fit this search"):
                search_requested(session, match, Cursor(direction, key))
            assert statements == [], f"{direction}={key!r} reached the database"
        event.remove(session.get_bind(), "before_cursor_execute", record)
        assert session.scalar(select(func.count()).select_from(Card)) == 60


def _plans(session, match: SearchFilter) -> list[str]:
    """SQLite's plan of each statement the search runs for ``match``."""
    plans = []

    def explain(connection, cursor, statement, parameters, context, executemany):
        rows = cursor.connection.execute("EXPLAIN QUERY PLAN " + statement, parameters).fetchall()
        plans.append(" | ".join(row[3] for row in rows))

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", explain)
    try:
        search_requested(session, match, Cursor("last"))
    finally:
        event.remove(engine, "before_cursor_execute", explain)
    return plans


@pytest.mark.parametrize(("name", "index"), [("a broad prefix, a narrow window", "ix_cards_search_date"),
                                             ("a narrow prefix, a broad window", "ix_cards_search_number")])
def test_on_sqlite_a_prefix_with_a_window_walks_the_smaller_range_in_an_index(tmp_path, name, index):
    settings = make_settings(tmp_path / "instance")
    bootstrap.init_database(settings)
    engine = make_engine(settings.database_url)
    with unit_of_work(make_sessions(engine)) as session:
        add_requested_cards(session, 60, "Test Organisation")
        session.execute(update(Card).where(Card.id.between(1, 9)).values(requested_at=TIED))
        session.execute(update(Card).where(Card.id > 9).values(requested_at=TIED - timedelta(days=3)))
        plans = _plans(session, SearchFilter("TC-0000", date(2026, 3, 4), date(2026, 3, 4)) if "narrow window"
                       in name else SearchFilter("TC-00005", date(2026, 3, 1), date(2026, 3, 12)))
    engine.dispose()
    page_query = [plan for plan in plans if "reservations" in plan]
    assert page_query and f"COVERING INDEX {index}" in page_query[0]
    assert all("COVERING INDEX" in plan and "SCAN cards" not in plan for plan in plans), plans
