"""BATCH ORDERS and an order's pages: open orders with their number, step, cards, start and operator;
finished orders searched and paged; Discard asked on the page; the next step without a progress
flash; the summary of an ended order; the options an order runs with."""

from __future__ import annotations

import html
import re
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from engine.db import unit_of_work
from engine.runtime import Runtime
from engine.store import Instance
from tasks.store import Order, Reservation
from tests.conftest import make_settings
from tests.web.console_steps import count, issue, title

OPTIONS = ("Runs with TempCardsScriptOptions version 1: PIN length <strong>6</strong>; "
           "PUK length <strong>8</strong>; Encode the temporary card <strong>yes</strong>; "
           "Select certificates to be issued <strong>PIV Authentication</strong>; "
           "Validity days <strong>14</strong>.")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request, tmp_path):
    """Both databases; the sweeper waits, so an instance held before its first step stays there."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    return replace(make_settings(tmp_path / "instance", url), sweep_seconds=3600)


def order_of(services, instance_id: str) -> Order:
    with unit_of_work(services.sessions) as session:
        return session.scalar(select(Order).where(Order.instance_id == instance_id))


def rows(page: str, table: str) -> list[str]:
    """The text of each body row of the table with class ``table``, tags stripped."""
    body = page.split(f'<table class="orders {table}">')[1].split("</table>")[0].split("<tbody>")[1]
    return [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", row)).split())
            for row in body.split("</tr>")[:-1]]


def test_start_and_issue_show_the_next_step_at_once(login, requested_cards):
    op = login()
    instance_id = op.start()
    # No wait for the engine here: the post gave it its moment.
    assert title(op.get(f"/orders/{instance_id}").get_data(as_text=True)) == "Search cards"
    response = op.submit(instance_id, [("action", "issue"), ("card", "10")], args={"number": "TC-00001"})
    assert response.status_code == 303
    page = op.get(f"/orders/{instance_id}").get_data(as_text=True)
    assert title(page) == "Selected cards" and "of 0 cards" not in page


def test_the_progress_view_never_counts_0_cards(login, services, requested_cards):
    op = login()
    held = Runtime(services.sessions, services.registry, submit=lambda instance_id: None)
    instance_id = held.start("TempCardsBoProcIssueMultiple", "op")
    page = op.get(f"/orders/{instance_id}").get_data(as_text=True)
    assert title(page) == "Working on the order"
    assert "The next step is being prepared." in page and "of 0 cards" not in page


def test_open_orders_show_number_step_cards_start_and_operator(login, services, requested_cards):
    op = login()
    searching = op.start()
    selected = op.start()
    issue(op, selected, [10, 11])
    page = op.get("/batch-orders").get_data(as_text=True)
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    listed = rows(page, "open-orders")
    assert len(listed) == 2
    process = "Issue multiple temporary cards, version 1 Waiting for you:"
    assert listed[0].startswith(f"Order {order_of(services, selected).id} {process} Selected cards 2 ")
    assert listed[1].startswith(f"Order {order_of(services, searching).id} {process} Search cards 0 ")
    assert all(f" {today} " in row and row.endswith(" op Resume Discard") for row in listed), listed


def test_discard_is_asked_on_the_page_then_frees_the_cards(login, services, requested_cards):
    op = login()
    instance_id = op.start()
    issue(op, instance_id, [10, 11])
    number = order_of(services, instance_id).id
    asked = op.post(f"/orders/{instance_id}/discard", page="/batch-orders")
    page = asked.get_data(as_text=True)
    assert asked.status_code == 200 and f"Discard order {number}?" in page
    assert "its 2 reserved cards go back to the\n    requested cards" in page
    assert f'>Discard order {number}</button>' in page and 'name="confirmed" value="yes"' in page
    assert order_of(services, instance_id).status == "open" and count(services, Reservation) == 2

    done = op.post(f"/orders/{instance_id}/discard", {"confirmed": "yes"}, page="/batch-orders")
    assert done.status_code == 303
    page = op.get("/batch-orders").get_data(as_text=True)
    assert f"Order {number} is discarded; its cards are free for other orders." in page
    assert "You have no open orders." in page
    assert order_of(services, instance_id).status == "cancelled" and count(services, Reservation) == 0
    assert rows(page, "finished-orders")[0].startswith(f"Order {number} Issue multiple temporary cards, "
                                                       "version 1 cancelled 2")


def test_an_order_that_produced_cards_cannot_be_discarded(reviewing, services):
    op, instance_id = reviewing
    page = op.get("/batch-orders").get_data(as_text=True)
    assert rows(page, "open-orders")[0].endswith(" op Resume")
    refused = op.post(f"/orders/{instance_id}/discard", {"confirmed": "yes"}, page="/batch-orders")
    assert refused.status_code == 303
    page = op.get("/batch-orders").get_data(as_text=True)
    assert "has produced cards, so it cannot be discarded" in page and "Nothing was changed." in page
    assert order_of(services, instance_id).status == "open"


def test_an_order_stopped_on_an_error_can_be_discarded(login, services, requested_cards):
    op = login()
    instance_id = op.start()
    issue(op, instance_id, [10])
    with unit_of_work(services.sessions) as session:
        session.execute(update(Instance).where(Instance.id == instance_id)
                        .values(status="error", error="The printer did not answer."))
    assert "Stopped on an error" in rows(op.get("/batch-orders").get_data(as_text=True), "open-orders")[0]
    done = op.post(f"/orders/{instance_id}/discard", {"confirmed": "yes"}, page="/batch-orders")
    assert done.status_code == 303
    assert order_of(services, instance_id).status == "cancelled" and count(services, Reservation) == 0


def test_another_operators_order_cannot_be_discarded(login, services, requested_cards):
    owner = login("op")
    instance_id = owner.start()
    other = login("other")
    refused = other.post(f"/orders/{instance_id}/discard", {"confirmed": "yes"}, page="/batch-orders")
    assert refused.status_code == 403
    assert order_of(services, instance_id).status == "open"


def add_finished(services, how_many: int) -> list[int]:
    """Finished orders, one a day back from 2026-03-30, every third by "other", every fourth cancelled;
    their numbers, oldest first."""
    start = datetime(2026, 3, 30, 10, 0, tzinfo=UTC)
    with unit_of_work(services.sessions) as session:
        added = [Order(instance_id=str(uuid.uuid4()), process_id="TempCardsBoProcIssueMultiple",
                       process_version=1, options_name="TempCardsScriptOptions", options_version=1,
                       options={},
                       status="cancelled" if n % 4 == 3 else "completed",
                       created_by="other" if n % 3 == 2 else "op",
                       created_at=start - timedelta(days=how_many - n),
                       closed_at=start - timedelta(days=how_many - n) + timedelta(hours=1))
                 for n in range(how_many)]
        session.add_all(added)
        session.flush()
        return [order.id for order in added]


def test_finished_orders_are_searched_and_paged(login, services):
    op = login()
    numbers = add_finished(services, 30)
    first = op.get("/batch-orders").get_data(as_text=True)
    listed = rows(first, "finished-orders")
    assert len(listed) == 25 and listed[0].startswith(f"Order {numbers[-1]} ")
    assert listed[0].endswith("2026-03-29 10:00 2026-03-29 11:00 other")
    older = html.unescape(re.search(r'<a rel="next" href="([^"]+)">Older</a>', first).group(1))
    second = op.get(older).get_data(as_text=True)
    oldest = [str(number) for number in reversed(numbers[:5])]
    assert [row.split()[1] for row in rows(second, "finished-orders")] == oldest
    assert 'rel="next"' not in second and ">Newer</a>" in second

    def found(query: str) -> list[str]:
        return rows(op.get(f"/batch-orders?{query}").get_data(as_text=True), "finished-orders")

    by_number = found(f"number=%23{numbers[3]}")
    assert len(by_number) == 1 and by_number[0].startswith(f"Order {numbers[3]} ")
    assert " cancelled " in by_number[0]
    by_operator = found("operator=other")
    assert len(by_operator) == 10 and all(row.endswith(" other") for row in by_operator)
    by_day = found("day=20.03.2026")
    assert len(by_day) == 1 and "2026-03-20 10:00" in by_day[0]
    assert "No finished order matches this search." in op.get("/batch-orders?day=2025-01-01").text

    wrong = op.get("/batch-orders?number=abc&day=someday")
    page = wrong.get_data(as_text=True)
    assert wrong.status_code == 400 and "Nothing is shown until the search is corrected:" in page
    assert "Order number: type the order&#39;s number, such as 42." in page
    assert 'id="find-day" name="day" value="someday"' in page and 'aria-invalid="true"' in page
    assert '<table class="orders finished-orders">' not in page


def test_the_summary_shows_every_attempt_misprint_and_serial(reviewing, services):
    op, instance_id = reviewing
    misprint = [("action", "repeat"), ("misprint", "10"), ("reason_10", "smudged photo")]
    assert op.submit(instance_id, misprint).status_code == 303
    assert op.submit(instance_id, {"action": "complete", "confirm_ok": "true"}).status_code == 303
    summary = op.order_page(instance_id)
    assert title(summary) == "Order completed"
    assert "<strong>2 cards</strong>:\n  2 produced, 0 failed." in summary
    card_10 = summary.split('href="/cards/TC-000010">TC-000010</a>')[1].split("</tr>")[0]
    assert "Attempt 1: <strong>produced</strong>, serial <code>" in card_10
    assert "Spoiled: smudged photo" in card_10
    assert "Attempt 2: <strong>produced</strong>, serial <code>" in card_10
    serials = re.findall(r"serial <code>([^<]+)</code>", card_10)
    assert len(set(serials)) == 2
    assert 'alt="Front of card TC-000010, attempt 2"' in card_10 and ">Front</a>" in card_10


def test_a_summary_of_one_card_says_1_card(login, services, requested_cards):
    op = login()
    instance_id = op.start()
    issue(op, instance_id, [12])
    op.submit(instance_id, {"action": "next"})
    assert op.submit(instance_id, {"action": "complete", "confirm_ok": "true"}).status_code == 303
    summary = op.order_page(instance_id)
    assert "<strong>1 card</strong>:" in summary and "1 cards" not in summary


def test_every_page_of_an_order_shows_the_options_it_runs_with(reviewing):
    op, instance_id = reviewing
    assert OPTIONS in op.order_page(instance_id)
    other = op.start()
    assert OPTIONS in op.order_page(other)
    selected = issue(op, other, [12])
    assert title(selected) == "Selected cards" and OPTIONS in selected
    assert op.submit(instance_id, {"action": "complete", "confirm_ok": "true"}).status_code == 303
    summary = op.order_page(instance_id)
    assert title(summary) == "Order completed" and OPTIONS in summary
