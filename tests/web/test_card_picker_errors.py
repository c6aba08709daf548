"""The card picker's errors and search terms: what is wrong is summed up at the top of the form
and marked on the one field (or card) at fault; dates and numbers are read as operators type
them; hostile values get a clear message and change nothing; a page link that no longer fits is
a notice, not the operator's mistake."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, update

from engine.db import unit_of_work
from tasks.store import Card, Reservation, Selection
from tests.web.console_steps import issue

FIELDS = ("number", "from", "to")


def snapshot(services) -> tuple:
    """What a page or post could change: staged and reserved cards, every card's number and state."""
    with unit_of_work(services.sessions) as session:
        return (session.scalar(select(func.count()).select_from(Selection)),
                session.scalar(select(func.count()).select_from(Reservation)),
                sorted(session.execute(select(Card.number, Card.state)).all()))


def marked(page: str) -> set[str]:
    """The ids of the elements marked aria-invalid."""
    return set(re.findall(r'<input[^>]*id="([^"]+)"[^>]*aria-invalid="true"', page))


def summary(page: str) -> str:
    """The error summary's markup; it must come before the search fields."""
    match = re.search(r'<div class="error-summary".*?</div>', page, re.S)
    assert match, "the page has no error summary"
    assert match.start() < page.index('id="search-number"'), "the summary is not at the top"
    assert 'role="alert"' in match.group(0) and 'tabindex="-1"' in match.group(0)
    return match.group(0)


def field_value(page: str, name: str) -> str:
    """The value a search field shows."""
    return re.search(rf'id="search-{name}"[^>]*value="([^"]*)"', page, re.S).group(1)


def matches(page: str) -> str:
    """The count line of the result."""
    return re.sub(r"<[^>]+>", "", re.search(r'<p class="count">(.*?)</p>', page, re.S).group(1))


@pytest.fixture
def searching(login, services, requested_cards):
    """An operator at Search cards; cards 1 to 6 requested on 2026-03-30, 7 to 12 on 2026-03-31."""
    with unit_of_work(services.sessions) as session:
        for first, day in ((1, 30), (7, 31)):
            session.execute(update(Card).where(Card.id.between(first, first + 5))
                            .values(requested_at=datetime(2026, 3, day, 12, tzinfo=UTC)))
    op = login()
    return op, op.start()


def test_a_wrong_date_is_summed_up_at_the_top_and_marks_only_its_field(searching, services):
    op, instance_id = searching
    page = op.order_page(instance_id, number="TC-0000", **{"from": "2026-02-30"})
    top = summary(page)
    assert 'href="#search-from"' in top and "Requested from: 2026-02-30 is not a day of the calendar" in top
    assert marked(page) == {"search-from"}
    assert 'aria-describedby="search-from-error"' in page and 'id="search-from-error"' in page
    assert "has-error" not in page and "requested cards match" not in page


def test_a_field_that_is_right_is_not_marked(searching):
    op, instance_id = searching
    page = op.order_page(instance_id, number="<b>", to="2026-03-31")
    assert 'href="#search-number"' in summary(page) and marked(page) == {"search-number"}
    assert field_value(page, "to") == "2026-03-31" and field_value(page, "number") == "&lt;b&gt;"


@pytest.mark.parametrize("typed", ["2026-03-31", "2026-3-31", "31.03.2026", "31/03/2026", "03/31/2026",
                                   "20260331", " 2026/03/31 "])
def test_dates_are_read_as_operators_type_them(searching, typed):
    op, instance_id = searching
    page = op.order_page(instance_id, **{"from": typed})
    assert matches(page) == "6 requested cards match." and 'class="error-summary"' not in page
    assert field_value(page, "from") == "2026-03-31"
    assert "from=2026-03-31" in page or "after=" not in page  # links carry the day as read


def test_a_window_of_one_day_typed_two_ways(searching):
    op, instance_id = searching
    page = op.order_page(instance_id, **{"from": "30.03.2026", "to": "2026-3-30"})
    assert matches(page) == "6 requested cards match."


@pytest.mark.parametrize(("name", "typed", "says"), [
    ("from", "03/04/2026", "Requested from: 03/04/2026 could be 2026-04-03 or 2026-03-04"),
    ("to", "31/03/26", "Requested to: 31/03/26 has a year of two digits"),
    ("to", "9999-12-31", "Requested to: 9999-12-31 is not a year from 2000 to 2099"),
    ("from", "2026-13-01", "Requested from: 2026-13-01 is not a day of the calendar"),
])
def test_dates_that_are_ambiguous_or_wrong_are_refused_naming_the_field(searching, services, name, typed,
                                                                         says):
    op, instance_id = searching
    before = snapshot(services)
    page = op.order_page(instance_id, **{name: typed})
    assert says in summary(page) and marked(page) == {f"search-{name}"}
    assert snapshot(services) == before


def test_from_after_to_marks_to(searching):
    op, instance_id = searching
    page = op.order_page(instance_id, **{"from": "2026-03-31", "to": "2026-03-30"})
    assert "Requested to (2026-03-30) is before Requested from (2026-03-31)" in summary(page)
    assert marked(page) == {"search-to"}


@pytest.mark.parametrize(("typed", "found"), [
    ("000001", ["TC-000001"]),
    ("00001", ["TC-000010", "TC-000011", "TC-000012"]),
    ("tc-00001", ["TC-000010", "TC-000011", "TC-000012"]),
    ("TC00001", ["TC-000010", "TC-000011", "TC-000012"]),
    ("123", ["TC-123456"]),
])
def test_a_number_prefix_without_tc_finds_the_cards(searching, services, typed, found):
    with unit_of_work(services.sessions) as session:
        session.execute(update(Card).where(Card.id == 5).values(number="TC-123456"))
    op, instance_id = searching
    page = op.order_page(instance_id, number=typed)
    assert re.findall(r'aria-label="Select card ([A-Z]+-[0-9]+)"', page) == found
    assert field_value(page, "number").startswith("TC-")


def test_digits_alone_among_several_letters_ask_for_them(searching, services):
    with unit_of_work(services.sessions) as session:
        session.execute(update(Card).where(Card.id == 1).values(number="AB-000001"))
    op, instance_id = searching
    page = op.order_page(instance_id, number="00001")
    assert "Card number: requested cards here start with different letters (AB-, TC-" in summary(page)
    assert marked(page) == {"search-number"}


HOSTILE = [
    ("number", "TC-" + "9" * 200),
    ("number", "<script>alert(1)</script>"),
    ("number", "TC-1' OR '1'='1"),
    ("number", "\u0661\u0662\u0663"),
    ("number", "-1"),
    ("from", "<img src=x onerror=alert(1)>"),
    ("from", "2026-03-31'; DROP TABLE cards; --"),
    ("from", "\uff12\uff10\uff12\uff16-03-31"),
    ("from", "-2026-03-31"),
    ("to", "99999-12-31"),
    ("to", "0000-00-00"),
    ("to", "1" * 5000),
]


@pytest.mark.parametrize(("name", "typed"), HOSTILE)
def test_hostile_search_values_get_a_clear_message_and_change_nothing(searching, services, name, typed):
    op, instance_id = searching
    before = snapshot(services)
    page = op.order_page(instance_id, **{name: typed})
    label = {"number": "Card number", "from": "Requested from", "to": "Requested to"}[name]
    assert f"{label}: " in summary(page) and marked(page) == {f"search-{name}"}
    assert "<script>" not in page and "<img src=x" not in page
    response = op.submit(instance_id, [("action", "issue"), ("select_all", "true")], args={name: typed})
    assert response.status_code == 400 and f"{label}: " in summary(response.text)
    assert snapshot(services) == before


@pytest.mark.parametrize("data", [
    [("action", "issue"), ("card", "1"), ("card", "1 OR 1=1")],
    [("action", "issue"), ("card", "\u0661")],
    [("action", "issue"), ("card", "<b>1</b>")],
    [("action", "issue")] + [("card", str(n % 12 + 1)) for n in range(1000)],
])
def test_hostile_posts_are_refused_at_the_top_and_change_nothing(searching, services, data):
    op, instance_id = searching
    before = snapshot(services)
    response = op.submit(instance_id, data)
    assert response.status_code == 400 and 'href="#picker-cards"' in summary(response.text)
    assert snapshot(services) == before


def test_a_card_taken_by_another_order_is_named_at_the_top_and_marked_in_its_row(login, services, searching):
    first = login("op1")
    issue(first, first.start(), [10])
    op, instance_id = searching
    response = op.submit(instance_id, [("action", "issue"), ("card", "10"), ("card", "11")],
                         args={"number": "TC-00001"})
    page = response.text
    assert response.status_code == 400
    top = summary(page)
    assert 'href="#card-10"' in top and "Card TC-000010 is already taken by order" in top
    assert top.startswith('<div class="error-summary"') and "Nothing was changed." in top
    assert marked(page) == {"card-10"} and 'id="card-10-error"' in page


def test_nothing_selected_is_summed_up_at_the_top(searching, services):
    op, instance_id = searching
    response = op.submit(instance_id, [("action", "issue")])
    assert response.status_code == 400
    top = summary(response.text).replace("&#34;", '"')
    assert 'href="#picker-cards"' in top and 'Select at least one card, or tick "Select all matching".' in top


def test_a_page_link_that_no_longer_fits_is_a_notice_not_an_error(searching):
    op, instance_id = searching
    page = op.order_page(instance_id, after="TC-000001")
    assert re.search(r'<p class="notice info" role="status">This page link does not fit this search', page)
    assert 'class="error-summary"' not in page and not marked(page)
