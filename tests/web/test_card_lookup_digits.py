"""CARDS finds a card by the digits of its number alone, as the card picker does: the letters are
the ones every card number here starts with, whatever the card's state; when cards start with
different letters the page asks for them, and changes nothing."""

from __future__ import annotations

from sqlalchemy import func, select, update

from engine.db import unit_of_work
from tasks.store import Card, CardEvent
from tests.web.test_card_history import matched


def test_digits_alone_list_the_cards_they_start(login, requested_cards):
    page = login("auditor1", "auditor").get("/cards", query_string={"number": "00001"})
    assert page.status_code == 200
    assert matched(page.text) == ["TC-000010", "TC-000011", "TC-000012"]
    assert 'value="TC-00001"' in page.text


def test_the_digits_of_a_whole_number_open_its_history(login, requested_cards):
    response = login().get("/cards", query_string={"number": " 000007 "})
    assert response.status_code == 302 and response.headers["Location"].endswith("/cards/TC-000007")


def test_cards_in_any_state_count(login, services, requested_cards):
    with unit_of_work(services.sessions) as session:
        session.execute(update(Card).values(state="unassigned"))
    page = login().get("/cards", query_string={"number": "00001"})
    assert matched(page.text) == ["TC-000010", "TC-000011", "TC-000012"]


def test_different_letters_are_asked_for_and_nothing_changes(login, services, requested_cards):
    with unit_of_work(services.sessions) as session:
        session.execute(update(Card).where(Card.id == 1).values(number="AB-000001"))

    def state() -> tuple:
        with unit_of_work(services.sessions) as session:
            return (session.scalar(select(func.count()).select_from(CardEvent)),
                    sorted(session.execute(select(Card.number, Card.state)).all()))

    before = state()
    response = login().get("/cards", query_string={"number": "000001"})
    assert response.status_code == 400
    assert ("Card number: cards here start with different letters (AB-, TC-, ...); type them too, "
            "such as AB-000001.") in response.text
    assert 'aria-invalid="true"' in response.text and matched(response.text) == []
    assert state() == before
    assert matched(login("op2").get("/cards", query_string={"number": "ab-00000"}).text) == ["AB-000001"]
