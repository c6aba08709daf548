"""SEARCH and the holder page, on both databases: cards by Status, number and holder in keyset
pages, holders by name or identifier, every hostile field refused with its message."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import update

from engine.db import unit_of_work
from tasks.demo import add_requested_cards
from tasks.holders import HolderRow, import_holders
from tasks.store import Assignment, Card, Holder

CARD = re.compile(r'<a href="/cards/(TC-[0-9]+)">')


@pytest.fixture
def stock(services) -> dict[str, int]:
    """120 cards: 1-60 requested, 61-110 unassigned, 111-120 assigned (111-115 to Ada, 116-120 to
    Alan); three holders, Grace inactive."""
    with unit_of_work(services.sessions) as session:
        add_requested_cards(session, 120, "Test Organisation")
        import_holders(session, [HolderRow(2, "E1", "Ada Lovelace", "ada@example.org", "R&D", "active"),
                                 HolderRow(3, "E2", "Alan Turing", "alan@example.org", "Codes", "active"),
                                 HolderRow(4, "E3", "Grace Hopper", "grace@example.org", "Navy", "inactive")])
        ids = {holder.identifier: holder.id for holder in session.query(Holder)}
        session.execute(update(Card).where(Card.id > 60).values(state="unassigned"))
        session.execute(update(Card).where(Card.id > 110).values(state="assigned"))
        session.execute(update(Card).where(Card.id.between(111, 115)).values(holder_id=ids["E1"]))
        session.execute(update(Card).where(Card.id > 115).values(holder_id=ids["E2"]))
        session.add(Assignment(card_id=111, holder_id=ids["E1"], assigned_by="op"))
    return ids


def cards(page: str) -> list[str]:
    return CARD.findall(page)


def test_cards_by_status_in_keyset_pages_linked_to_their_pages(login, stock):
    op = login()
    first = op.get("/search?object=card&status=unassigned").get_data(as_text=True)
    assert "50 cards match" in first
    assert cards(first) == [f"TC-{n:06d}" for n in range(61, 111)]
    assert 'rel="next"' not in first
    requested = op.get("/search?object=card&status=requested").get_data(as_text=True)
    assert cards(requested)[0] == "TC-000001" and len(cards(requested)) == 50
    after = op.get("/search?object=card&status=requested&after=TC-000050").get_data(as_text=True)
    assert cards(after) == [f"TC-{n:06d}" for n in range(51, 61)]
    assert 'rel="prev"' in after and 'rel="next"' not in after
    before = op.get("/search?object=card&status=requested&before=TC-000051").get_data(as_text=True)
    assert cards(before) == [f"TC-{n:06d}" for n in range(1, 51)]
    assert 'rel="next"' in before


def test_cards_by_number_and_by_holder(login, stock):
    op = login()
    digits = op.get("/search?object=card&number=00011").get_data(as_text=True)
    assert cards(digits) == [f"TC-{n:06d}" for n in range(110, 120)]
    by_name = op.get("/search?object=card&holder=ada").get_data(as_text=True)
    assert cards(by_name) == [f"TC-{n:06d}" for n in range(111, 116)]
    assert f'/holders/{stock["E1"]}' in by_name and "Ada Lovelace" in by_name
    by_identifier = op.get("/search?object=card&holder=E2&status=assigned").get_data(as_text=True)
    assert cards(by_identifier) == [f"TC-{n:06d}" for n in range(116, 121)]
    nobody = op.get("/search?object=card&holder=Nobody").get_data(as_text=True)
    assert cards(nobody) == [] and "No temporary card matches" in nobody


def test_holders_and_a_holder_page(login, stock):
    auditor = login("aud", "auditor")
    found = auditor.get("/search?object=holder&holder=a").get_data(as_text=True)
    assert "Ada Lovelace" in found and "Alan Turing" in found and "Grace Hopper" not in found
    every = auditor.get("/search?object=holder").get_data(as_text=True)
    assert "Grace Hopper" in every and "inactive" in every
    page = auditor.get(f"/holders/{stock['E1']}").get_data(as_text=True)
    assert "Ada Lovelace" in page and "R&amp;D" in page and "TC-000111" in page and "holds it" in page
    assert auditor.get("/holders/999999").status_code == 404
    assert auditor.get("/holders/abc").status_code == 404


@pytest.mark.parametrize(("query", "message"), [
    ("object=card&status=%27%3B+DROP+TABLE+cards%3B--", "Choose a status from the list."),
    ("object=robots", "Choose Temporary card or Holder."),
    ("object=card&number=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
     "Card number: type the start of a card number"),
    ("object=card&holder=" + "x" * 300, "Holder: enter at most 200 characters."),
])
def test_hostile_fields_are_refused_with_their_message(login, stock, query, message):
    response = login().get(f"/search?{query}")
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert message in page and "Nothing was searched" in page
    assert "<script>alert" not in page and cards(page) == []


def test_a_changed_page_link_shows_the_first_page_and_anonymous_users_log_in(login, stock, app):
    op = login()
    page = op.get("/search?object=card&status=requested&after=%27%20OR%201%3D1").get_data(as_text=True)
    assert cards(page)[0] == "TC-000001"
    assert app.test_client().get("/search").status_code in (302, 303)
    assert "SEARCH" in op.get("/search").get_data(as_text=True)


def test_digits_alone_ask_for_the_letters_when_numbers_start_differently(login, stock, services):
    with unit_of_work(services.sessions) as session:
        session.execute(update(Card).where(Card.id == 120).values(number="XY-000120"))
    response = login().get("/search?object=card&number=00005")
    assert response.status_code == 400
    assert "start with different letters (TC-, XY-, ...); type them too, such as TC-00005" in \
        response.get_data(as_text=True)
