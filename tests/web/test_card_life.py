"""The temporary card's own processes from the console, with the real BPMN files on SQLite and
PostgreSQL: start buttons drawn from the deployed definitions, a card held by the process that
runs on it, Request temporary cards from Quick search, Lock temporary card from a card's page."""

from __future__ import annotations

import html
import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from engine.db import unit_of_work
from engine.store import AuditEvent, Definition, Instance
from tasks.card_holds import CardHold
from tasks.card_life import expire_cards
from tasks.cardsdk.records import IssuedCertificate
from tasks.store import Card, CardEvent, utcnow
from tests.web.console_steps import card_states, count, title

LOCK = "TempCardsProcLock"
REQUEST = "TempCardsProcRequest"
CARD = "TC-000010"


@pytest.fixture
def produced(reviewing):
    """Op's order 1 completed: cards TC-000010 and TC-000011 unassigned, with certificates."""
    op, instance_id = reviewing
    assert op.submit(instance_id, {"action": "complete", "confirm_ok": "true"}).status_code == 303
    assert title(op.order_page(instance_id)) == "Order completed"
    return op


def start_on_card(op, number: str, process_id: str, csrf: bool = True):
    """Press a process's button on the card's page (or post its URL as an attacker would)."""
    url = f"/cards/{number}/start/{process_id}"
    if not csrf:
        return op.client.post(url)
    return op.post(url, page="/cards/TC-000001")


def flash_of(op, response) -> str:
    """The page a refused start goes back to, with its message."""
    assert response.status_code == 303, response.get_data(as_text=True)
    return html.unescape(op.get(response.headers["Location"]).get_data(as_text=True))


def processes_started(services, process_id: str) -> int:
    """Instances of ``process_id``."""
    with unit_of_work(services.sessions) as session:
        return session.scalar(select(func.count()).select_from(Instance)
                              .join(Definition, Definition.id == Instance.definition_id)
                              .where(Definition.process_id == process_id))


def test_a_card_page_offers_the_processes_its_state_allows(produced, login):
    page = produced.get(f"/cards/{CARD}").get_data(as_text=True)
    assert f'action="/cards/{CARD}/start/{LOCK}"' in page and ">Lock temporary card</button>" in page
    requested = produced.get("/cards/TC-000001").get_data(as_text=True)
    assert "/start/" not in requested and "Lock temporary card" not in requested
    # Only operators start processes; an auditor reads the card without buttons.
    auditor = login("audrey", "auditor").get(f"/cards/{CARD}").get_data(as_text=True)
    assert "/start/" not in auditor


def test_lock_a_card_records_the_reason_and_revokes_its_certificates(produced, services):
    started = start_on_card(produced, CARD, LOCK)
    assert started.status_code == 303 and "/orders/" in started.headers["Location"]
    instance_id = started.headers["Location"].rsplit("/", 1)[-1]
    step = produced.order_page(instance_id)
    assert title(step) == "Lock temporary card"
    assert f'card <a href="/cards/{CARD}">{CARD}</a>' in step
    held = produced.get(f"/cards/{CARD}").get_data(as_text=True)
    assert "held by the open process <strong>Lock temporary card</strong>" in held and "Resume it" in held

    blank = produced.submit(instance_id, {"action": "next", "reason": "   "})
    assert blank.status_code == 400 and card_states(services)[CARD] == "unassigned"
    locked = produced.submit(instance_id, {"action": "next", "reason": "Lost in the car park"})
    assert locked.status_code == 303
    summary = produced.order_page(instance_id)
    assert title(summary) == "Lock temporary card: completed"
    assert "unassigned" in summary and "Locked: Lost in the car park" in summary

    with unit_of_work(services.sessions) as session:
        card = session.scalar(select(Card).where(Card.number == CARD))
        assert card.state == "locked"
        event = session.scalars(select(CardEvent).where(CardEvent.card_id == card.id)
                                .order_by(CardEvent.id.desc())).first()
        recorded = (event.from_state, event.to_state, event.reason, event.actor, event.process_id,
                    event.instance_id)
        assert recorded == ("unassigned", "locked", "Locked: Lost in the car park", "op", LOCK, instance_id)
        certificates = session.scalars(select(IssuedCertificate)
                                       .where(IssuedCertificate.card_number == CARD)).all()
        assert certificates and all(c.revoked_at is not None for c in certificates)
        audit = session.scalars(select(AuditEvent).where(AuditEvent.card == CARD,
                                                         AuditEvent.action == "card state changed")
                                .order_by(AuditEvent.id.desc())).first()
        assert audit.detail["to"] == "locked" and audit.instance_id == instance_id
        assert session.scalar(select(func.count()).select_from(CardHold)) == 0
    after = produced.get(f"/cards/{CARD}").get_data(as_text=True)
    assert "held by" not in after and "/start/" not in after  # locked is final: nothing starts on it


def test_cancel_leaves_the_card_as_it_was(produced, services):
    instance_id = start_on_card(produced, CARD, LOCK).headers["Location"].rsplit("/", 1)[-1]
    with unit_of_work(services.sessions) as session:
        events = session.scalar(select(func.count()).select_from(CardEvent))
    assert produced.submit(instance_id, {"action": "cancel"}).status_code == 303
    assert title(produced.order_page(instance_id)) == "Lock temporary card: completed"
    assert card_states(services)[CARD] == "unassigned"
    assert count(services, CardHold) == 0 and count(services, CardEvent) == events
    assert f"/start/{LOCK}" in produced.get(f"/cards/{CARD}").get_data(as_text=True)


def test_a_card_another_process_holds_is_refused_with_its_name(produced, login, services):
    start_on_card(produced, CARD, LOCK)
    other = login("olga")
    page = flash_of(other, start_on_card(other, CARD, LOCK))
    assert ("Card TC-000010 is held by the open process “Lock temporary card” that op started" in page
            and "Nothing was started." in page)
    assert processes_started(services, LOCK) == 1 and count(services, CardHold) == 1


def test_two_racing_starts_one_wins_the_other_is_told(produced, login, services):
    second = login("olga")
    tokens = [op.token("/cards/TC-000001") for op in (produced, second)]
    barrier = threading.Barrier(2)
    responses: list = [None, None]

    def press(index: int, op) -> None:
        barrier.wait()
        responses[index] = op.client.post(f"/cards/{CARD}/start/{LOCK}", data={"csrf_token": tokens[index]})

    threads = [threading.Thread(target=press, args=(i, op)) for i, op in enumerate((produced, second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    places = sorted(response.headers["Location"] for response in responses)
    assert "/orders/" in places[1] and places[0].endswith(f"/cards/{CARD}"), places
    loser = (produced, second)[[r.headers["Location"] for r in responses].index(places[0])]
    assert "is held by the open process “Lock temporary card”" in html.unescape(
        loser.get(places[0]).get_data(as_text=True))
    assert processes_started(services, LOCK) == 1 and count(services, CardHold) == 1


def test_the_state_is_checked_again_when_the_process_starts(produced, services):
    page = flash_of(produced, start_on_card(produced, "TC-000001", LOCK))
    assert "Card TC-000001 is requested; “Lock temporary card” starts on a card that is assigned or " \
           "unassigned. Nothing was started." in page
    assert processes_started(services, LOCK) == 0 and count(services, CardHold) == 0


@pytest.mark.parametrize("url", [
    f"/cards/{CARD}/start/NoSuchProcess",
    f"/cards/{CARD}/start/TempCardsBoProcIssueMultiple",  # deployed, but on BATCH ORDERS
    f"/cards/{CARD}/start/{REQUEST}",  # deployed, but on Quick search
    f"/cards/{CARD}/start/{'A' * 300}",
    f"/cards/{CARD}/start/%2E%2E%2Fadmin",
    f"/cards/{CARD}/start/{LOCK}%00",
    f"/cards/tc-000010'--/start/{LOCK}",
    f"/cards/TC-999999/start/{LOCK}",
    f"/batch-orders/start/{LOCK}",  # a card process has no card here
    f"/batch-orders/start/{REQUEST}",
    f"/quick-search/{LOCK}",
    "/quick-search/TempCardsBoProcIssueMultiple",
    "/batch-orders/start/<script>alert(1)</script>",
])
def test_a_process_id_no_menu_offers_starts_nothing(produced, services, url):
    with unit_of_work(services.sessions) as session:
        before = session.scalar(select(func.count()).select_from(Instance))
    response = produced.post(url, page="/cards/TC-000001")
    assert response.status_code == 404
    assert "<script>alert" not in response.get_data(as_text=True)
    with unit_of_work(services.sessions) as session:
        assert session.scalar(select(func.count()).select_from(Instance)) == before
    assert count(services, CardHold) == 0


def test_a_start_without_the_form_token_starts_nothing(produced, services):
    assert start_on_card(produced, CARD, LOCK, csrf=False).status_code == 400
    assert processes_started(services, LOCK) == 0


def test_request_temporary_cards_from_quick_search(login, services):
    op = login()
    page = op.get("/batch-orders").get_data(as_text=True)
    assert "<summary>Quick search</summary>" in page and ">Temporary card</p>" in page
    assert f'action="/quick-search/{REQUEST}"' in page and ">Request temporary cards</button>" in page
    assert 'action="/batch-orders/start/TempCardsBoProcIssueMultiple"' in page

    started = op.post(f"/quick-search/{REQUEST}", page="/batch-orders")
    instance_id = started.headers["Location"].rsplit("/", 1)[-1]
    assert title(op.order_page(instance_id)) == "Request temporary cards"
    for bad in ("0", "abc", "-3", "2.5"):
        assert op.submit(instance_id, {"action": "next", "amount": bad}).status_code == 400
    # More than the option allows (9): back to the step with the reason, nothing requested.
    assert op.submit(instance_id, {"action": "next", "amount": "12"}).status_code == 303
    again = html.unescape(op.order_page(instance_id))
    assert title(again) == "Request temporary cards"
    assert "Amount: request 1 to 9 cards at a time, not 12. Nothing was requested." in again
    assert count(services, Card) == 0

    assert op.submit(instance_id, {"action": "next", "amount": "3"}).status_code == 303
    summary = op.order_page(instance_id)
    assert title(summary) == "Request temporary cards: completed"
    assert card_states(services) == {f"TC-00000{n}": "requested" for n in (1, 2, 3)}
    assert 'href="/cards/TC-000003"' in summary
    with unit_of_work(services.sessions) as session:
        events = session.scalars(select(CardEvent).order_by(CardEvent.id)).all()
        assert [(e.to_state, e.process_id, e.instance_id, e.actor) for e in events] == \
            [("requested", REQUEST, instance_id, "op")] * 3
        trail = session.scalars(select(AuditEvent.card).where(AuditEvent.action == "card state changed")
                                .order_by(AuditEvent.id)).all()
        assert trail == ["TC-000001", "TC-000002", "TC-000003"]


def test_cancel_a_request_leaves_nothing_behind(login, services):
    op = login()
    started = op.post(f"/quick-search/{REQUEST}", page="/batch-orders")
    instance_id = started.headers["Location"].rsplit("/", 1)[-1]
    assert op.submit(instance_id, {"action": "cancel", "amount": "5"}).status_code == 303
    op.order_page(instance_id)
    assert count(services, Card) == 0 and count(services, CardEvent) == 0


def test_batch_orders_lists_other_open_processes_apart(produced):
    start_on_card(produced, CARD, LOCK)
    page = produced.get("/batch-orders").get_data(as_text=True)
    others = page.split('id="other-heading"')[1].split("</section>")[0]
    assert "Lock temporary card" in others and "waiting for you: Lock temporary card" in others


def test_a_card_that_expired_meanwhile_stops_the_lock_and_cancel_frees_it(produced, services):
    instance_id = start_on_card(produced, CARD, LOCK).headers["Location"].rsplit("/", 1)[-1]
    with unit_of_work(services.sessions) as session:
        session.execute(update(Card).where(Card.number == CARD)
                        .values(valid_until=utcnow() - timedelta(days=1)))
    assert expire_cards(services.sessions) == 1
    assert produced.submit(instance_id, {"action": "next", "reason": "Lost"}).status_code == 303
    stopped = html.unescape(produced.order_page(instance_id))
    assert "Card TC-000010 is expired; it cannot become locked." in stopped
    assert card_states(services)[CARD] == "expired" and count(services, CardHold) == 1

    assert produced.post(f"/orders/{instance_id}/cancel", page=f"/orders/{instance_id}").status_code == 303
    assert count(services, CardHold) == 0 and card_states(services)[CARD] == "expired"
    with unit_of_work(services.sessions) as session:
        assert session.get(Instance, instance_id).status == "cancelled"
