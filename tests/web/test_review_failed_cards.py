"""Review production with failed cards: Complete order asks on the page first, naming how many failed;
the counts and decisions stay in view above the cards, failed first; the post's errors are at the
top; the previews are cached by the browser."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from engine import bootstrap
from engine.db import unit_of_work
from tasks.store import Order
from tests.conftest import start_services
from tests.web.console_steps import card_states, title
from tests.web.order_stations import failing_station

FAILED = 3
QUESTION = ("3 of 10 cards failed.</strong> Complete the order anyway?\n"
            "      Failed cards go back to requested.")


@pytest.fixture
def services(settings):
    """The product on a station whose first three blank cards refuse key generation."""
    start_services(settings).close()
    services = bootstrap.build_services(settings, failing_station(settings, FAILED))
    yield services
    services.close()


@pytest.fixture
def reviewing(login, services, requested_cards):
    """An operator at Review production of ten cards (TC-000001 to 10), three of them failed."""
    op = login()
    instance_id = op.start()
    pairs = [("action", "issue")] + [("card", str(card_id)) for card_id in range(1, 11)]
    assert op.submit(instance_id, pairs, args={"number": "TC-0000"}).status_code == 303
    assert op.submit(instance_id, {"action": "next"}).status_code == 303
    assert title(op.order_page(instance_id)) == "Review production"
    assert list(card_states(services).values()).count("failed") == FAILED
    return op, instance_id


def order_status(services) -> str:
    with unit_of_work(services.sessions) as session:
        return session.scalar(select(Order.status))


def test_complete_with_failed_cards_asks_first_and_only_the_confirmed_post_completes(reviewing, services):
    op, instance_id = reviewing
    review = op.order_page(instance_id)
    assert "data-confirm" not in review.split('value="complete"')[1].split(">")[0]  # no browser prompt

    asked = op.submit(instance_id, {"action": "complete", "confirm_ok": "true"})
    page = asked.get_data(as_text=True)
    assert asked.status_code == 400
    assert QUESTION in page and 'class="notice warning" id="failed-question"' in page
    assert 'name="accept_failed" value="3"' in page and "Yes, complete the order with 3 failed cards" in page
    assert order_status(services) == "open" and list(card_states(services).values()).count("failed") == FAILED

    # A tick for another number of failed cards is no answer to this question.
    stale = op.submit(instance_id, {"action": "complete", "confirm_ok": "true", "accept_failed": "2"})
    assert stale.status_code == 400 and QUESTION in stale.get_data(as_text=True)
    assert order_status(services) == "open"

    done = op.submit(instance_id, {"action": "complete", "confirm_ok": "true", "accept_failed": "3"})
    assert done.status_code == 303, done.get_data(as_text=True)
    assert title(op.order_page(instance_id)) == "Order completed"
    assert order_status(services) == "completed"
    states = card_states(services)
    assert [states[f"TC-{n:06d}"] for n in range(1, 11)] == ["requested"] * 3 + ["unassigned"] * 7


def test_the_counts_and_decisions_stay_in_view_above_the_cards_failed_first(reviewing):
    op, instance_id = reviewing
    page = op.order_page(instance_id)
    bar = page.index('<div class="sticky-actions top">')
    table = page.index('<table class="cards review">')
    assert bar < table
    in_bar = page[bar:table]
    assert "<strong>7</strong> produced, <strong>3</strong> failed, of 10 cards." in in_bar
    assert ">Repeat production</button>" in in_bar and ">Complete order</button>" in in_bar
    rows = re.findall(r'<tr class="outcome-(\w+)">\s*<td><strong>(TC-\d+)', page)
    assert [status for status, _number in rows] == ["failed"] * 3 + ["produced"] * 7
    assert [number for _status, number in rows[:3]] == ["TC-000001", "TC-000002", "TC-000003"]


def test_what_is_wrong_with_a_post_is_said_above_the_cards(reviewing):
    op, instance_id = reviewing
    for data, message in (({"action": "repeat"}, "Tick the cards to produce again."),
                          ({"action": "complete", "accept_failed": "3"},
                           "Tick \u201cEverything is OK\u201d to go on."),
                          ({"action": "repeat", "misprint": "5"},
                           "Card TC-000005: say why it is misprinted.")):
        response = op.submit(instance_id, data)
        page = response.get_data(as_text=True)
        assert response.status_code == 400
        assert -1 < page.find(message) < page.index('<table class="cards review">'), message


def test_the_browser_keeps_the_card_previews(reviewing):
    op, instance_id = reviewing
    preview = re.search(r'<img src="(/spool/[^"]+\.png)"', op.order_page(instance_id)).group(1)
    with op.get(preview) as first:
        assert first.status_code == 200 and first.data.startswith(b"\x89PNG")
        cache = {part.strip() for part in first.headers["Cache-Control"].split(",")}
        etag = first.headers["ETag"]
    assert cache == {"private", "max-age=31536000", "immutable"} and etag
    with op.get(preview, headers={"If-None-Match": etag}) as again:
        assert again.status_code == 304
