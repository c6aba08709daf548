"""A card's history shows everything recorded about it; the card lookup finds cards by any case
and by the start of the number; an order and its previews are its owner's (and auditors')."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import func, select

from engine.db import unit_of_work
from tasks.cardsdk.records import CustodyRelease, IssuedCertificate
from tasks.demo import add_requested_cards
from tasks.store import Card, CardEvent, Order, ProductionAttempt
from tests.web.console_steps import title

MISPRINT = [("action", "repeat"), ("misprint", "10"), ("reason_10", "smudged photo")]


@pytest.fixture
def misprinted(reviewing):
    """Op's order 1 back at Review production after card TC-000010 was misprinted and made again."""
    op, instance_id = reviewing
    assert op.submit(instance_id, MISPRINT).status_code == 303
    assert title(op.order_page(instance_id)) == "Review production"
    return op, instance_id


def section(page: str, heading_id: str) -> str:
    """The HTML of the page's section headed by ``heading_id``."""
    match = re.search(rf'<section aria-labelledby="{heading_id}">(.*?)</section>', page, re.S)
    assert match, f"no section {heading_id}"
    return match.group(1)


def rows(markup: str) -> list[str]:
    """The body rows of the tables in ``markup``, tags stripped, spaces collapsed."""
    bodies = "".join(re.findall(r"<tbody>(.*?)</tbody>", markup, re.S))
    cells = [re.sub(r"<[^>]+>", "", re.sub(r"</?t[dh]\b[^>]*>|<br>", " ", row))
             for row in re.findall(r"<tr.*?</tr>", bodies, re.S)]
    return [" ".join(html.unescape(cell).split()) for cell in cells]


def records(services) -> tuple[list[ProductionAttempt], list[IssuedCertificate]]:
    """Card 10's attempts and certificates as stored."""
    with unit_of_work(services.sessions) as session:
        attempts = list(session.scalars(select(ProductionAttempt).where(ProductionAttempt.card_id == 10)
                                        .order_by(ProductionAttempt.attempt)))
        certificates = list(session.scalars(select(IssuedCertificate)
                                            .where(IssuedCertificate.card_number == "TC-000010")
                                            .order_by(IssuedCertificate.id)))
        session.expunge_all()
    return attempts, certificates


def test_history_shows_the_misprint_the_spoiled_card_and_its_revoked_certificate(misprinted, services):
    op, instance_id = misprinted
    (spoiled, remade), certificates = records(services)
    page = op.get("/cards/TC-000010").text

    attempts = rows(section(page, "attempts-heading"))
    assert len(attempts) == 2
    assert attempts[0].startswith("Order 1, attempt 1 produced spoiled smudged photo")
    assert spoiled.physical_serial in attempts[0] and "virtual" in attempts[0]
    assert attempts[1].startswith(f"Order 1, attempt 2 produced {remade.physical_serial}")
    assert "spoiled" not in attempts[1]
    # Each physical card's own GUID and FASC-N, as a door system registers it.
    for attempt, row in zip((spoiled, remade), attempts, strict=True):
        assert f"GUID {attempt.card_uuid} FASC-N {attempt.fascn_readable}" in row
    assert spoiled.fascn_readable.startswith("9999-9999-000010-0-1-")  # series 0, then 1
    assert remade.fascn_readable.startswith("9999-9999-000010-1-1-")
    assert spoiled.card_uuid != remade.card_uuid and spoiled.fascn != remade.fascn

    # Every encoded card carries PIV Authentication and Card Authentication (FIPS 201-3).
    assert [(c.certificate_type, c.revoked_at is not None) for c in certificates] == [
        ("PIV Authentication", True), ("Card Authentication", True),
        ("PIV Authentication", False), ("Card Authentication", False)]
    shown = rows(section(page, "certificates-heading"))
    assert len(shown) == 4
    for certificate, row in zip(certificates, shown, strict=True):
        assert certificate.serial in row and certificate.certificate_type in row
    for row in shown[:2]:
        assert "revoked" in row and "smudged photo" in row and "Order 1, attempt 1" in row
    for row in shown[2:]:
        assert "valid" in row and "Order 1, attempt 2" in row
    assert "BEGIN CERTIFICATE" not in page


def test_history_lists_custody_releases_never_a_secret(misprinted, services):
    op, _instance_id = misprinted
    with unit_of_work(services.sessions) as session:
        session.add(CustodyRelease(card_id=10, attempt_ref="order-1/card-10/attempt-2", kinds="pin,puk",
                                   released_by="op"))
    page = op.get("/cards/TC-000010").text
    released = rows(section(page, "releases-heading"))
    assert len(released) == 1 and released[0].endswith(" op PIN, PUK Order 1, attempt 2")
    assert "never shown" in page


def test_history_names_the_order_its_process_and_option_versions(misprinted):
    op, instance_id = misprinted
    page = op.get("/cards/TC-000010").text
    produced = [row for row in rows(section(page, "events-heading")) if " requested unassigned " in row]
    assert len(produced) == 1
    assert produced[0].endswith(" op Order 1 Issue multiple temporary cards v1 "
                                "options TempCardsScriptOptions v1")
    orders = rows(section(page, "orders-heading"))
    assert orders == ["Order 1 produced; misprinted: smudged photo open op Issue multiple temporary cards v1 "
                      "TempCardsScriptOptions v1"]
    assert page.count(f'<a href="/orders/{instance_id}">Order&nbsp;1</a>') >= 3


@pytest.mark.parametrize(("name", "role", "link"), [
    ("aud", "auditor", '<a href="/audit/orders/1">Order&nbsp;1</a>'),
    ("op2", "operator", None),
    ("adm", "admin", None),
])
def test_the_order_is_linked_for_whoever_may_see_it(misprinted, login, name, role, link):
    _op, instance_id = misprinted
    page = login(name, role).get("/cards/TC-000010").text
    assert "smudged photo" in page and "Order&nbsp;1" in page
    if link:
        assert link in page
    else:
        assert "/orders/" not in page
        assert "Only the operator who started an order, and auditors, can open it." in page


def test_a_card_never_produced_says_so(login, requested_cards):
    page = login().get("/cards/TC-000003").text
    assert "This card has not been produced yet." in page and "No certificate was issued" in page
    assert "No order has taken this card yet." in page


def test_a_number_in_small_letters_finds_the_card(login, requested_cards):
    op = login()
    assert op.get("/cards?number=tc-000003").headers["Location"] == "/cards/TC-000003"
    assert op.get("/cards?number=%20Tc000003%20").headers["Location"] == "/cards/TC-000003"
    assert op.get("/cards/tc-000003").headers["Location"] == "/cards/TC-000003"


def matched(page: str) -> list[str]:
    """The card numbers a lookup lists."""
    return re.findall(r'<td><a href="/cards/([^"]+)">', page)


def test_lookup_by_the_start_of_the_number_in_any_case(login, requested_cards):
    page = login().get("/cards?number=tc-00001").text
    assert matched(page) == ["TC-000010", "TC-000011", "TC-000012"]
    assert "3 cards start with <strong>TC-00001</strong>" in page
    assert 'value="TC-00001"' in page


def test_lookup_pages_through_many_matches(login, services, requested_cards):
    with unit_of_work(services.sessions) as session:
        add_requested_cards(session, 1000, "Test Organisation")
    op = login()
    first = op.get("/cards?number=TC-0").text
    assert "More than 1,000 cards start with <strong>TC-0</strong>" in first
    assert matched(first) == [f"TC-{n:06d}" for n in range(1, 51)]
    following = re.search(r'<a rel="next" href="([^"]+)">Next cards</a>', first).group(1)
    second = op.get(html.unescape(following)).text
    assert matched(second) == [f"TC-{n:06d}" for n in range(51, 101)] and "First cards" in second
    assert matched(op.get("/cards?number=TC-00100").text) == [f"TC-{n:06d}" for n in range(1000, 1010)]
    nothing = op.get("/cards?number=TC-9").text
    assert matched(nothing) == [] and "No card number starts with TC-9." in nothing


HOSTILE = [
    ("<script>alert(1)</script>", "Type a card number or its start"),
    ("' OR 1=1 --", "Type a card number or its start"),
    ("TC-%", "Type a card number or its start"),
    ("TC_0001", "Type a card number or its start"),
    ("TC-0001\x00", "Type a card number or its start"),
    ("\uff34\uff23-0001", "Type a card number or its start"),
    ("tc-0001; DROP TABLE cards", "Type a card number or its start"),
    ("TC-0001\u0661", "Type a card number or its start"),
    ("9" * 41, "A card number has at most 40 characters."),
]


@pytest.mark.parametrize(("typed", "message"), HOSTILE)
def test_hostile_lookups_are_refused_and_change_nothing(login, services, requested_cards, typed, message):
    def state() -> tuple:
        with unit_of_work(services.sessions) as session:
            return (session.scalar(select(func.count()).select_from(Card)),
                    session.scalar(select(func.count()).select_from(CardEvent)),
                    sorted(session.execute(select(Card.number, Card.state)).all()))

    before = state()
    response = login().get("/cards", query_string={"number": typed})
    assert response.status_code == 400
    assert message in response.text and 'id="error-summary"' in response.text
    assert 'aria-invalid="true"' in response.text
    assert "<script>alert" not in response.text and matched(response.text) == []
    assert state() == before


@pytest.mark.parametrize("after", ["<b>", "TC-000010' OR '1'='1", "x" * 500])
def test_a_bad_page_link_shows_the_first_page(login, requested_cards, after):
    page = login().get("/cards", query_string={"number": "TC-00001", "after": after})
    assert page.status_code == 200 and matched(page.text) == ["TC-000010", "TC-000011", "TC-000012"]
    assert "<b>" not in page.text


def test_another_operator_is_told_whose_order_it_is(reviewing, login, services):
    _op, instance_id = reviewing
    other = login("op2")
    for url in (f"/orders/{instance_id}", f"/orders/{instance_id}/status"):
        response = other.get(url)
        assert response.status_code == 403
        assert "This order belongs to op: only op can open it and its card previews." in response.text
        assert "Your role does not give access" not in response.text


def spool_urls(page: str) -> list[str]:
    """The preview images and PDF links of an order page."""
    return sorted(set(re.findall(r'"(/spool/[^"]+\.(?:png|pdf))"', page)))


def test_previews_and_pdfs_follow_their_order(reviewing, login):
    op, instance_id = reviewing
    urls = spool_urls(op.order_page(instance_id))
    assert len(urls) == 6 and any(url.endswith(".pdf") for url in urls)
    for url in urls:
        with op.get(url) as mine:
            assert mine.status_code == 200, url
    auditor, other, admin = login("aud", "auditor"), login("op2"), login("adm", "admin")
    for url in urls:
        with auditor.get(url) as read:
            assert read.status_code == 200 and read.data[:4] in (b"\x89PNG", b"%PDF"), url
        for someone in (other, admin):
            refused = someone.get(url)
            assert refused.status_code == 403, url
            assert "This order belongs to op" in refused.text and b"PNG" not in refused.data


def test_a_preview_outside_any_order_is_not_found(reviewing, services):
    op, _instance_id = reviewing
    folder = services.settings.spool_path
    (folder / "loose.png").write_bytes(b"\x89PNG loose")
    (folder / "order-7").mkdir()
    (folder / "order-7" / "card.png").write_bytes(b"\x89PNG of no order")
    for url in ("/spool/loose.png", "/spool/order-7/card.png", "/spool/order-01/card-10-attempt-1-front.png",
                "/spool/order-\u0661/x.png", "/spool/order-99999999999999999999/x.png"):
        response = op.get(url)
        assert response.status_code == 404, url
        assert b"PNG" not in response.data
    with unit_of_work(services.sessions) as session:
        assert session.scalar(select(func.count()).select_from(Order)) == 1
