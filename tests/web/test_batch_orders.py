"""The operator's "Issue multiple temporary cards" through the console, on SQLite with the real BPMN."""

from __future__ import annotations

import re

from sqlalchemy import select

from engine.db import unit_of_work
from tasks.store import CardEvent, Order, ProductionAttempt, Reservation
from tests.web.console_steps import card_states, count, issue, title


def test_issue_repeat_and_complete(login, services, requested_cards):
    op = login()
    start_page = op.get("/batch-orders").get_data(as_text=True)
    assert "BATCH ORDERS" in start_page and "Issue multiple temporary cards" in start_page
    instance_id = op.start()

    search = op.order_page(instance_id, number="TC-00001")
    assert title(search) == "Search cards"
    assert "<strong>3</strong> requested cards match" in search and "TC-000010" in search
    assert "TC-000009" not in search and ">Search</button>" in search and "Select all matching (3)" in search

    selected = issue(op, instance_id, [10, 11])
    assert title(selected) == "Selected cards"
    assert "TC-000010" in selected and "TC-000011" in selected and "TC-000012" not in selected
    assert ">Next</button>" in selected and ">Cancel</button>" in selected

    assert op.submit(instance_id, {"action": "next"}).status_code == 303
    review = op.order_page(instance_id)
    assert title(review) == "Review production"
    assert "<strong>2</strong> produced" in review
    assert ">Complete order</button>" in review and ">Repeat production</button>" in review
    previews = re.findall(r'<img src="(/spool/[^"]+\.png)"', review)
    assert len(previews) == 4
    with op.get(previews[0]) as image:
        assert image.status_code == 200 and image.data.startswith(b"\x89PNG")

    misprint = [("action", "repeat"), ("misprint", "10"), ("reason_10", "smudged photo")]
    response = op.submit(instance_id, misprint)
    assert response.status_code == 303, response.get_data(as_text=True)
    review = op.order_page(instance_id)
    assert title(review) == "Review production" and "(attempt 2)" in review
    assert "Earlier misprint: smudged photo" in review
    with unit_of_work(services.sessions) as session:
        spoiled = session.scalar(select(ProductionAttempt).where(ProductionAttempt.card_id == 10,
                                                                 ProductionAttempt.attempt == 1))
        assert spoiled.spoiled_reason == "smudged photo"

    unconfirmed = op.submit(instance_id, {"action": "complete"})
    assert unconfirmed.status_code == 400
    assert "Tick \u201cEverything is OK\u201d to go on." in unconfirmed.get_data(as_text=True)
    assert title(op.order_page(instance_id)) == "Review production"

    assert op.submit(instance_id, {"action": "complete", "confirm_ok": "true"}).status_code == 303
    summary = op.order_page(instance_id)
    assert title(summary) == "Order completed"
    states = card_states(services)
    assert (states["TC-000010"], states["TC-000011"], states["TC-000012"]) == ("unassigned", "unassigned",
                                                                               "requested")
    assert count(services, Reservation) == 0
    assert "You have no open orders." in op.get("/batch-orders").get_data(as_text=True)

    history = op.get("/cards/TC-000010").get_data(as_text=True)
    assert "<td>requested</td>\n    <td>unassigned</td>" in history
    assert "Issue multiple temporary cards v1" in history and "<td>op</td>" in history


def test_status_for_the_progress_view(login, requested_cards):
    op = login()
    instance_id = op.start()
    op.order_page(instance_id)
    status = op.get(f"/orders/{instance_id}/status").get_json()
    assert status == {"busy": False, "status": "running", "waiting_on": "Search cards", "error": None,
                      "progress": {"total": 0, "pending": 0, "produced": 0, "failed": 0}}
    issue(op, instance_id, [10, 11, 12])
    assert op.get(f"/orders/{instance_id}/status").get_json()["progress"]["pending"] == 3


def test_cancel_before_production_changes_no_card(login, services, requested_cards):
    op = login()
    instance_id = op.start()
    issue(op, instance_id, [10, 11])
    assert count(services, Reservation) == 2
    assert op.submit(instance_id, {"action": "cancel", "card": "999"}).status_code == 303
    assert title(op.order_page(instance_id)) == "Order cancelled"
    assert set(card_states(services).values()) == {"requested"}
    assert count(services, Reservation) == 0
    assert count(services, CardEvent) == 12  # only the "requested" records of the demo data
    # The released cards can go into the next order.
    other = op.start()
    assert title(issue(op, other, [10, 11])) == "Selected cards"


def test_cancel_at_search_ends_the_order(login, services, requested_cards):
    op = login()
    instance_id = op.start()
    assert op.submit(instance_id, {"action": "cancel"}).status_code == 303
    assert title(op.order_page(instance_id)) == "Order cancelled"
    assert count(services, CardEvent) == 12


def test_cancel_after_production_closes_the_order_as_cancelled(reviewing, services):
    op, instance_id = reviewing
    assert op.submit(instance_id, {"action": "cancel"}).status_code == 303
    assert title(op.order_page(instance_id)) == "Order cancelled"
    assert card_states(services)["TC-000010"] == "unassigned"
    with unit_of_work(services.sessions) as session:
        assert session.scalar(select(Order.status)) == "cancelled"
    assert count(services, Reservation) == 0


def test_select_all_matching(login, services, requested_cards):
    op = login()
    instance_id = op.start()
    response = op.submit(instance_id, {"action": "issue", "select_all": "true"}, args={"number": "TC-00001"})
    assert response.status_code == 303
    selected = op.order_page(instance_id)
    assert "<strong>3</strong> cards reserved for this order" in selected
    assert count(services, Reservation) == 3


def test_an_order_left_halfway_is_in_the_inbox(login, requested_cards):
    op = login()
    instance_id = op.start()
    issue(op, instance_id, [10])
    inbox = op.get("/batch-orders").get_data(as_text=True)
    assert "Waiting for you: Selected cards" in inbox and f'href="/orders/{instance_id}">Resume</a>' in inbox
    assert title(op.order_page(instance_id)) == "Selected cards"
