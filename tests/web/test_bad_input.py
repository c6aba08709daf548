"""Tampered and mistaken posts: each gets a clear message, HTTP 400, and changes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, update

from engine.db import unit_of_work
from tasks.store import Card, OrderCard, Reservation, Selection
from tests.web.console_steps import issue, title


def snapshot(services, instance_id: str) -> tuple:
    """What a post could change: the ready step, staged and reserved cards, repeat marks."""
    task = services.runtime.ready_task(instance_id)
    with unit_of_work(services.sessions) as session:
        rows = (session.scalar(select(func.count()).select_from(Selection)),
                session.scalar(select(func.count()).select_from(Reservation)),
                sorted(session.execute(select(OrderCard.card_id, OrderCard.repeat_requested,
                                              OrderCard.misprint_reason)).all()),
                sorted(session.execute(select(Card.number, Card.state)).all()))
    return (task.task_id if task else None, *rows)


def refused(op, services, instance_id: str, data, message: str, args: dict | None = None) -> str:
    """Post ``data``; assert 400 with ``message`` on the re-drawn page and no change at all."""
    before = snapshot(services, instance_id)
    response = op.submit(instance_id, data, args=args)
    page = response.get_data(as_text=True)
    assert response.status_code == 400, page
    assert message in page
    assert "Nothing was changed" in page or 'role="alert"' in page
    assert snapshot(services, instance_id) == before
    return page


@pytest.fixture
def searching(login, services, requested_cards):
    """An operator at the Search cards step of a new order."""
    op = login()
    instance_id = op.start()
    assert title(op.order_page(instance_id)) == "Search cards"
    return op, instance_id


@pytest.mark.parametrize(("data", "message"), [
    ([("action", "issue")], "Select at least one card, or tick"),
    ([("action", "issue"), ("card", "999")], "Unknown card id(s): 999. Search again."),
    ([("action", "issue"), ("card", "10"), ("card", "abc")], "holds a value that is not a card"),
    ([("action", "issue"), ("card", "-1")], "holds a value that is not a card"),
    ([("action", "issue"), ("card", "²")], "holds a value that is not a card"),
    ([("action", "delete"), ("card", "10")], "Use one of the buttons of this step"),
    ([("card", "10")], "Use one of the buttons of this step"),
])
def test_bad_selections_are_refused(searching, services, data, message):
    op, instance_id = searching
    page = refused(op, services, instance_id, data, message)
    assert "<h1>Search cards</h1>" in page


@pytest.mark.parametrize("page", ["²", "٣", "0", "-1", "9" * 40, ""])
def test_a_search_page_that_is_not_plain_digits_shows_the_first_page(searching, page):
    op, instance_id = searching
    drawn = op.get(f"/orders/{instance_id}?number=TC-0000&page={page}")
    assert drawn.status_code == 200 and "<h1>Search cards</h1>" in drawn.text


def test_a_card_not_requested_is_refused(searching, services):
    op, instance_id = searching
    with unit_of_work(services.sessions) as session:
        session.execute(update(Card).where(Card.id == 12).values(state="aborted"))
    refused(op, services, instance_id, [("action", "issue"), ("card", "12")],
            "Only requested cards can be issued; not: TC-000012 (aborted).")


def test_bad_search_filter_is_explained(searching, services):
    op, instance_id = searching
    page = op.order_page(instance_id, **{"from": "31/12", "page": "x"})
    assert "Requested from: enter a date as YYYY-MM-DD" in page
    refused(op, services, instance_id, [("action", "issue"), ("select_all", "true")],
            "Requested from: enter a date as YYYY-MM-DD", args={"from": "yesterday"})


def test_post_without_csrf_token_changes_nothing(searching, services):
    op, instance_id = searching
    before = snapshot(services, instance_id)
    response = op.submit(instance_id, [("action", "issue"), ("card", "10")], csrf=False)
    assert response.status_code == 400
    assert "security token is missing or expired" in response.get_data(as_text=True)
    assert snapshot(services, instance_id) == before


def test_stale_task_id_changes_nothing(searching, services):
    op, instance_id = searching
    page = op.order_page(instance_id)
    before = snapshot(services, instance_id)
    response = op.post(f"/orders/{instance_id}/tasks/not-the-task", {"action": "issue", "card": "10"},
                       page=f"/orders/{instance_id}")
    assert response.status_code == 409 and "The page was out of date" in response.get_data(as_text=True)
    assert snapshot(services, instance_id) == before and "Search cards" in page


def test_a_card_taken_by_another_open_order(login, services, requested_cards):
    first = login("op1")
    first_order = first.start()
    issue(first, first_order, [10])
    second = login("op2")
    instance_id = second.start()
    search = second.order_page(instance_id, number="TC-00001")
    assert "(taken by order 1)" in search
    refused(second, services, instance_id, [("action", "issue"), ("card", "10"), ("card", "11")],
            "Card TC-000010 is already taken by order 1; choose other cards.", args={"number": "TC-00001"})
    # "Select all matching" leaves the taken card out.
    second.submit(instance_id, {"action": "issue", "select_all": "true"}, args={"number": "TC-00001"})
    assert "<strong>2</strong> cards reserved" in second.order_page(instance_id)


@pytest.mark.parametrize(("data", "message"), [
    ([("action", "repeat")], "Tick the cards to produce again."),
    ([("action", "repeat"), ("repeat", "10")], "Card TC-000010 was produced correctly; mark it misprinted"),
    ([("action", "repeat"), ("misprint", "11")], "Card TC-000011: say why it is misprinted."),
    ([("action", "repeat"), ("misprint", "3"), ("reason_3", "bad")], "Card id(s) 3 are not in this order."),
    ([("action", "repeat"), ("misprint", "10"), ("reason_10", "x" * 501)], "at most 500 characters"),
    ([("action", "complete"), ("confirm_ok", "true"), ("misprint", "10"), ("reason_10", "smudge")],
     "Cards are ticked for production again"),
    ([("action", "complete"), ("confirm_ok", "perhaps")],
     "Everything is OK: tick the box or leave it empty."),
])
def test_bad_review_posts_are_refused(reviewing, services, data, message):
    op, instance_id = reviewing
    page = refused(op, services, instance_id, data, message)
    assert "<h1>Review production</h1>" in page


def test_html_in_input_is_shown_as_text(reviewing, services):
    op, instance_id = reviewing
    page = refused(op, services, instance_id, [("action", "repeat"), ("misprint", "10"),
                                               ("reason_10", "<script>alert(1)</script>" + "x" * 500)],
                   "at most 500 characters")
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
