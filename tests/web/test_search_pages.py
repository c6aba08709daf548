"""The card picker among more cards than it counts: "more than 1,000", First / Previous / Next / Last,
page links that were tampered with, and "Select all matching" beyond the first page."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select

from engine.db import unit_of_work
from tasks.card_search import COUNT_CAP
from tasks.demo import add_requested_cards
from tasks.store import Card, Reservation, Selection
from tests.web.console_steps import count

CARDS = COUNT_CAP + 100


@pytest.fixture
def searching(login, services):
    """An operator at the Search cards step, among 1,100 requested cards; the numbers in the
    order the picker lists them (oldest request first)."""
    with unit_of_work(services.sessions) as session:
        add_requested_cards(session, CARDS, "Test Organisation")
        ordered = list(session.scalars(select(Card.number).order_by(Card.requested_at, Card.id)))
    op = login()
    return op, op.start(), ordered


def shown(page: str) -> list[str]:
    """The card numbers listed on the page."""
    return re.findall(r'aria-label="Select card ([A-Z]+-[0-9]+)"', page)


def link(page: str, rel: str) -> str | None:
    """The order page the page button ``rel`` (first, prev, next, last) leads to, or None when it
    is not offered: the button posts the ticks to the task, then shows the order with its query."""
    match = re.search(rf'data-page="{rel}"\s+formaction="([^"]+)"', page)
    return re.sub(r"/tasks/[^/?]+", "", html.unescape(match.group(1))) if match else None


def test_pages_both_ways_among_more_cards_than_are_counted(searching):
    op, instance_id, ordered = searching
    first = op.order_page(instance_id)
    assert "More than <strong>1,000</strong> requested cards match; showing 1–50." in first
    assert "Select all matching (more than 1,000)" in first
    assert shown(first) == ordered[:50] and link(first, "prev") is None and link(first, "first") is None
    second = op.get(link(first, "next")).text
    assert shown(second) == ordered[50:100] and "showing 51–100." in second
    assert shown(op.get(link(second, "prev")).text) == ordered[:50]
    assert shown(op.get(link(second, "first")).text) == ordered[:50]
    last = op.get(link(second, "last")).text
    assert shown(last) == ordered[-50:] and "showing the last 50." in last
    assert link(last, "next") is None and link(last, "last") is None
    assert shown(op.get(link(last, "prev")).text) == ordered[-100:-50]


def test_the_page_links_keep_the_search(searching):
    op, instance_id, _ = searching
    first = op.order_page(instance_id, number="TC-0005")
    assert "<strong>100</strong> requested cards match; showing 1–50." in first
    assert "Select all matching (100)" in first
    second = op.get(link(first, "next")).text
    assert "number=TC-0005" in link(first, "next")
    assert shown(second) == [f"TC-{n:06d}" for n in range(550, 600)] and 'value="TC-0005"' in second
    assert shown(op.get(link(second, "prev")).text) == [f"TC-{n:06d}" for n in range(500, 550)]


def what_could_change(services) -> tuple:
    with unit_of_work(services.sessions) as session:
        return (session.scalar(select(func.count()).select_from(Selection)),
                session.scalar(select(func.count()).select_from(Reservation)),
                session.scalar(select(func.count()).where(Card.state == "requested")))


@pytest.mark.parametrize(("query", "message"), [
    ({"after": "1' OR '1'='1"}, "This page link does not fit this search"),
    ({"before": "99999999999999999999999-1"}, "This page link does not fit this search"),
    ({"after": "TC-000001"}, "This page link does not fit this search"),
    ({"number": "TC-00", "after": "1700000000000000-3"}, "This page link does not fit this search"),
    ({"after": "x" * 65}, "This page link is not valid"),
    ({"after": "1-1", "before": "1-1"}, "This page link is not valid"),
    ({"last": "yes"}, "This page link is not valid"),
    ({"after": "\u00b9-1"}, "This page link is not valid"),
    ({"before": ""}, "This page link is not valid"),
])
def test_a_tampered_page_link_shows_the_first_page_and_says_why(searching, services, query, message):
    op, instance_id, ordered = searching
    before = what_could_change(services)
    page = op.order_page(instance_id, **query)
    assert message in page and "here is the first page" in page
    if "number" not in query:
        assert shown(page) == ordered[:50]
    assert what_could_change(services) == before


def test_select_all_matching_on_a_later_page_takes_every_match(searching, services):
    op, instance_id, _ = searching
    after = parse_qs(urlsplit(link(op.order_page(instance_id), "next")).query)["after"][0]
    response = op.submit(instance_id, {"action": "issue", "select_all": "true"}, args={"after": after})
    assert response.status_code == 303, response.get_data(as_text=True)
    op.order_page(instance_id)
    assert count(services, Reservation) == CARDS
