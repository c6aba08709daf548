"""Assign temporary card with its PIN letter, and Withdraw temporary card, through the console on
both databases, with the real BPMN files and in-process virtual cards: the PIN letter's PIN opens
the card once and is never shown again; a withdrawn card is re-encoded (new PIN works, the old
one does not, its old certificates are revoked) before its next holder gets it; every bad input
is refused with a clear message and changes nothing."""

from __future__ import annotations

import re

import pypdfium2
import pytest
from sqlalchemy import select

from engine import bootstrap
from engine.db import unit_of_work
from engine.deploy_errors import DeployError
from engine.store import AuditEvent
from tasks import card_assignment
from tasks.card_assignment import Step
from tasks.cardsdk.ca import LocalCA, ca_folder
from tasks.cardsdk.custody import Custody, load_or_create_key
from tasks.cardsdk.encoder import Encoder
from tasks.cardsdk.piv import profiles
from tasks.cardsdk.piv.client import PivClient
from tasks.cardsdk.piv.errors import WrongPinError
from tasks.cardsdk.piv.transport import InProcessTransport
from tasks.cardsdk.piv.virtual_card import VirtualPivCard
from tasks.cardsdk.printer import SpoolPrinter
from tasks.cardsdk.records import CustodySecret, IssuedCertificate
from tasks.cardsdk.station import Station
from tasks.holders import HolderRow, import_holders
from tasks.store import Assignment, Card, CardEvent, Holder
from tests.conftest import start_services
from tests.integration.flow import add_cards, select_and_issue, start, submit

PROFILE = "piv-3des-p256"
PIN_LINE = re.compile(r"^PIN\r?\n([0-9]{6,8})\r?$", re.MULTILINE)


class RecordingStock:
    """Blank virtual cards, each kept so the test can put it in a reader later."""

    def __init__(self) -> None:
        self.cards: list[VirtualPivCard] = []

    def next_card(self) -> InProcessTransport:
        card = VirtualPivCard.blank(profiles.get(PROFILE))
        self.cards.append(card)
        return InProcessTransport(card)

    def physical(self, number: str) -> list[VirtualPivCard]:
        """The physical cards encoded for card ``number``, oldest first (its certificates name it)."""
        return [card for card in self.cards if any(number.encode() in data for data in card.objects.values())]


@pytest.fixture
def stock() -> RecordingStock:
    return RecordingStock()


@pytest.fixture
def services(settings, stock):
    """The product on a deployed database, its station encoding onto the recording stock; cards
    TC-000001 to TC-000003 produced (unassigned); holders Ada and Bob (active), Carl (inactive)."""
    start_services(settings).close()

    def station(sessions):
        ca = LocalCA(ca_folder(settings.instance_path), settings.ca_passphrase, sessions)
        encoder = Encoder(stock, ca, Custody(sessions, load_or_create_key(settings.instance_path)),
                          profiles.get(PROFILE))
        return Station(SpoolPrinter(), encoder, "recording")

    services = bootstrap.build_services(settings, station)
    add_cards(services, 3)
    instance_id, task = start(services)
    task = select_and_issue(services, instance_id, task, [1, 2, 3])
    task = submit(services, instance_id, task, {"action": "next"})
    assert submit(services, instance_id, task, {"action": "complete", "confirm_ok": True}) is None
    with unit_of_work(services.sessions) as session:
        import_holders(session, [HolderRow(2, "E1", "Ada Lovelace", "ada@example.org", "R&D", "active"),
                                 HolderRow(3, "E2", "Bob Byte", "bob@example.org", "Ops", "active"),
                                 HolderRow(4, "E3", "Carl Gone", "carl@example.org", "Ops", "inactive")])
    yield services
    services.close()


def holder_id(services, identifier: str) -> int:
    with unit_of_work(services.sessions) as session:
        return session.scalar(select(Holder.id).where(Holder.identifier == identifier))


def card(services, number: str) -> tuple[str, int | None]:
    with unit_of_work(services.sessions) as session:
        found = session.scalar(select(Card).where(Card.number == number))
        return found.state, found.holder_id


def start_on_card(op, number: str, process_id: str) -> str:
    """Press the process's button on the card's page; the new instance's id."""
    response = op.post(f"/cards/{number}/start/{process_id}", page=f"/cards/{number}")
    assert response.status_code == 303, response.get_data(as_text=True)
    location = response.headers["Location"]
    assert "/orders/" in location, op.get(location).get_data(as_text=True)
    return location.rsplit("/", 1)[-1]


def pin_of(letter: bytes) -> str:
    text = pypdfium2.PdfDocument(letter)[0].get_textpage().get_text_range()
    match = PIN_LINE.search(text)
    assert match, text
    return match.group(1)


def pin_opens(physical: VirtualPivCard, pin: str) -> bool:
    client = PivClient(InProcessTransport(physical).transmit)
    client.select()
    try:
        client.verify_pin(pin)
    except WrongPinError:
        return False
    return True


def assign(op, services, number: str, identifier: str) -> str:
    """Assign card ``number`` to holder ``identifier`` up to its PIN letter step; the instance id."""
    instance_id = start_on_card(op, number, "TempCardsProcAssign")
    page = op.order_page(instance_id, holder_q=identifier)
    assert "Select holder" in page and number in page
    response = op.submit(instance_id, {"action": "next", "holder": str(holder_id(services, identifier))})
    assert response.status_code == 303, response.get_data(as_text=True)
    assert "PIN letter" in op.order_page(instance_id)
    return instance_id


def print_letter(op, instance_id: str):
    return op.post(f"/orders/{instance_id}/pin-letter", page=f"/orders/{instance_id}")


def test_assign_prints_the_pin_letter_once_and_its_pin_opens_the_card(login, services, stock):
    op = login()
    instance_id = assign(op, services, "TC-000001", "E1")
    assert card(services, "TC-000001") == ("assigned", holder_id(services, "E1"))
    early = op.submit(instance_id, {"action": "next"})
    assert early.status_code == 400 and "Print the PIN letter first" in early.get_data(as_text=True)

    letter = print_letter(op, instance_id)
    assert letter.status_code == 200 and letter.mimetype == "application/pdf"
    assert letter.headers["Cache-Control"] == "no-store"
    text = pypdfium2.PdfDocument(letter.data)[0].get_textpage().get_text_range()
    assert "TC-000001" in text and "Ada Lovelace" in text and "PUK" not in text
    pin = pin_of(letter.data)
    [physical] = stock.physical("TC-000001")
    assert pin_opens(physical, pin)

    again = print_letter(op, instance_id)
    assert again.status_code == 409
    assert "was already printed" in again.get_data(as_text=True) and pin not in again.get_data(as_text=True)
    page = op.order_page(instance_id)
    assert "The PIN letter was printed on" in page and pin not in page
    assert op.submit(instance_id, {"action": "next"}).status_code == 303
    assert services.runtime.view(instance_id).status == "completed"

    with unit_of_work(services.sessions) as session:
        secrets = session.scalars(select(CustodySecret).where(CustodySecret.card_id == 1,
                                                              CustodySecret.kind.in_(("pin", "puk")))).all()
        assert all(row.released_at is not None and row.ciphertext == b"" for row in secrets)
        trail = [(entry.action, str(entry.detail)) for entry in session.scalars(
            select(AuditEvent).where(AuditEvent.card == "TC-000001").order_by(AuditEvent.id))]
    assert ("custody released", "{'attempt': 'order-1/card-1/attempt-1', 'released': 'pin,puk'}") in trail
    assert not any(pin in detail for _action, detail in trail)
    history = op.get("/cards/TC-000001").get_data(as_text=True)
    assert "Assigned to Ada Lovelace (E1)." in history and pin not in history
    ada = holder_id(services, "E1")
    assert f'Holder: <a href="/holders/{ada}">Ada Lovelace</a> (E1, R&amp;D).' in history
    holder_page = op.get(f"/holders/{holder_id(services, 'E1')}").get_data(as_text=True)
    assert "TC-000001" in holder_page and "holds it" in holder_page


def test_bad_assignments_are_refused_and_change_nothing(login, services):
    op = login()
    instance_id = start_on_card(op, "TC-000002", "TempCardsProcAssign")
    op.order_page(instance_id)
    for holder, message in ((holder_id(services, "E3"), "Carl Gone (E3) is inactive"),
                            ("1 OR 1=1", "not a holder of this list"),
                            ("999999", "not a holder of this list"), ("-4", "not a holder of this list"),
                            ("", "Select the holder")):
        response = op.submit(instance_id, {"action": "next", "holder": str(holder)})
        assert response.status_code == 400, holder
        assert message in response.get_data(as_text=True), holder
        assert card(services, "TC-000002") == ("unassigned", None)

    # Another operator cannot start a process on the card this one holds.
    other = login("op2")
    refused = other.post("/cards/TC-000002/start/TempCardsProcAssign", page="/cards/TC-000002",
                         follow_redirects=True)
    assert "is held by the open process" in refused.get_data(as_text=True)

    # One active card per holder (the options' default): Ada gets TC-000001, then not TC-000002.
    first = assign(op, services, "TC-000003", "E1")
    print_letter(op, first)
    op.submit(first, {"action": "next"})
    response = op.submit(instance_id, {"action": "next", "holder": str(holder_id(services, "E1"))})
    assert response.status_code == 303
    page = op.order_page(instance_id)
    assert "already has the active temporary card TC-000003" in page and "Select holder" in page
    assert card(services, "TC-000002") == ("unassigned", None)

    # Cancel on Select holder assigns nothing; the card is free again.
    assert op.submit(instance_id, {"action": "cancel"}).status_code == 303
    assert services.runtime.view(instance_id).status == "completed"
    assert card(services, "TC-000002") == ("unassigned", None)


def test_cancel_before_the_pin_letter_undoes_the_assignment(login, services):
    op = login()
    instance_id = assign(op, services, "TC-000002", "E2")
    assert op.submit(instance_id, {"action": "cancel"}).status_code == 303
    assert op.services.runner.wait(instance_id, timeout=60)
    assert card(services, "TC-000002") == ("unassigned", None)
    with unit_of_work(services.sessions) as session:
        ended = session.scalar(select(Assignment).where(Assignment.card_id == 2))
        assert ended.end_reason == "Cancelled before the PIN letter was printed." and ended.ended_at
    # The PIN is still sealed: the next assignment prints it.
    again = assign(op, services, "TC-000002", "E2")
    assert print_letter(op, again).status_code == 200
    assert print_letter(op, instance_id).status_code == 409


def test_withdraw_revokes_reencodes_and_the_next_holder_gets_a_fresh_pin(login, services, stock):
    op = login()
    first = assign(op, services, "TC-000001", "E1")
    old_pin = pin_of(print_letter(op, first).data)
    op.submit(first, {"action": "next"})

    withdrawing = start_on_card(op, "TC-000001", "TempCardsProcWithdraw")
    page = op.order_page(withdrawing)
    assert "Withdraw temporary card" in page and "Ada Lovelace" in page
    assert op.submit(withdrawing, {"action": "next"}).status_code == 303
    assert services.runner.wait(withdrawing, timeout=120)
    view = services.runtime.view(withdrawing)
    assert view.status == "completed", view.error
    assert card(services, "TC-000001") == ("unassigned", None)
    with unit_of_work(services.sessions) as session:
        certificates = session.scalars(select(IssuedCertificate).where(
            IssuedCertificate.card_number == "TC-000001").order_by(IssuedCertificate.id)).all()
        reasons = [event.reason for event in session.scalars(
            select(CardEvent).where(CardEvent.card_id == 1).order_by(CardEvent.id))]
    old = [cert for cert in certificates if cert.attempt_ref == "order-1/card-1/attempt-1"]
    fresh = [cert for cert in certificates if cert.attempt_ref != "order-1/card-1/attempt-1"]
    assert old and all(cert.revoked_at is not None for cert in old)
    assert fresh and all(cert.revoked_at is None for cert in fresh)
    assert any(reason.startswith("Withdrawn from Ada Lovelace (E1)") for reason in reasons)
    assert reasons[-1].startswith("Produced")

    second = assign(op, services, "TC-000001", "E2")
    new_pin = pin_of(print_letter(op, second).data)
    op.submit(second, {"action": "next"})
    old_card, new_card = stock.physical("TC-000001")
    assert pin_opens(new_card, new_pin)
    assert new_pin == old_pin or not pin_opens(new_card, old_pin)
    assert not pin_opens(old_card, new_pin) or new_pin == old_pin
    assert card(services, "TC-000001") == ("assigned", holder_id(services, "E2"))


def test_a_withdrawn_pin_is_never_released_to_the_next_holder(login, services):
    """The card whose PIN went out cannot be assigned before it was re-encoded: the rule is in
    the assignment itself, whatever process or data tries."""
    op = login()
    first = assign(op, services, "TC-000001", "E1")
    print_letter(op, first)
    op.submit(first, {"action": "next"})
    with unit_of_work(services.sessions) as session:  # as if it came back some other way
        found = session.get(Card, 1)
        found.state, found.holder_id = "unassigned", None
    instance_id = start_on_card(op, "TC-000001", "TempCardsProcAssign")
    op.order_page(instance_id)
    op.submit(instance_id, {"action": "next", "holder": str(holder_id(services, "E2"))})
    page = op.order_page(instance_id)
    assert "PIN was already given out" in page and card(services, "TC-000001") == ("unassigned", None)


def deploy_assign_options(services, tmp_path, several: bool, puk: bool) -> None:
    """The admin changes TempCardsProcAssignOptions (a new version, used by processes started later)."""
    script = tmp_path / "TempCardsProcAssignOptions"
    script.write_text(f"several_cards_per_holder = {several}\npin_letter_shows_puk = {puk}\n")
    bootstrap.deploy(services, "admin", paths=[script])


def test_the_options_allow_several_cards_and_a_puk_on_the_letter(login, services, tmp_path):
    op = login()
    first = assign(op, services, "TC-000001", "E1")
    assert "PUK" not in pypdfium2.PdfDocument(print_letter(op, first).data)[0].get_textpage().get_text_range()
    op.submit(first, {"action": "next"})
    deploy_assign_options(services, tmp_path, several=True, puk=True)
    second = assign(op, services, "TC-000002", "E1")
    text = pypdfium2.PdfDocument(print_letter(op, second).data)[0].get_textpage().get_text_range()
    puk = re.compile(r"^PUK \(unblocks the card after wrong PINs\)\r?\n[0-9]{8}\r?$", re.MULTILINE)
    assert puk.search(text), text
    assert card(services, "TC-000002") == ("assigned", holder_id(services, "E1"))


@pytest.mark.parametrize(("text", "reason"), [
    ("several_cards_per_holder = 2\npin_letter_shows_puk = False\n",
     "several_cards_per_holder: must be True or False, not 2"),
    ("several_cards_per_holder = False\npin_letter_shows_puk = False\npin_letter_shows_pin = True\n",
     "pin_letter_shows_pin: unknown option"),
    ("several_cards_per_holder = False\n", "pin_letter_shows_puk: missing"),
])
def test_bad_assignment_options_are_refused_at_deploy(services, tmp_path, text, reason):
    script = tmp_path / "TempCardsProcAssignOptions"
    script.write_text(text)
    with pytest.raises(DeployError, match=re.escape(reason)):
        bootstrap.deploy(services, "admin", paths=[script])


def test_only_the_assigning_operator_prints_the_letter(login, services):
    op = login()
    instance_id = assign(op, services, "TC-000001", "E1")
    other = login("op2")
    refused = other.post(f"/orders/{instance_id}/pin-letter", page="/search")
    assert refused.status_code == 403 and "This order belongs to op" in refused.get_data(as_text=True)
    auditor = login("aud", "auditor")
    assert auditor.post(f"/orders/{instance_id}/pin-letter", page="/search").status_code == 403
    for bogus in ("no-such-instance", "x" * 300):
        response = op.post(f"/orders/{bogus}/pin-letter", page="/search")
        assert response.status_code == 404 and "Nothing was printed" in response.get_data(as_text=True)
    unsent = op.client.post(f"/orders/{instance_id}/pin-letter")  # no CSRF token
    assert unsent.status_code == 400
    # A process that holds no card (a batch order) has no PIN letter.
    batch = op.start()
    op.order_page(batch)
    response = op.post(f"/orders/{batch}/pin-letter", page="/search")
    assert response.status_code == 409 and "holds no card" in response.get_data(as_text=True)
    # The refusals printed nothing: the assigning operator still gets the letter, once.
    assert print_letter(op, instance_id).status_code == 200


def test_hostile_holder_searches_are_shown_as_typed_and_match_nothing(login, services):
    op = login()
    instance_id = start_on_card(op, "TC-000001", "TempCardsProcAssign")
    for typed in ("<script>alert(1)</script>", "' OR 1=1 --", "%", "x" * 500):
        page = op.order_page(instance_id, holder_q=typed, holder_after="1; DROP TABLE holders")
        assert "<script>alert(1)" not in page and "No holder matches" in page
    page = op.order_page(instance_id, holder_after="99999999999999999999999")
    assert "Ada Lovelace" in page


def test_assign_and_withdraw_steps_run_again_after_a_crash_change_nothing_more(login, services):
    """A host that died after a step committed and before the engine saved it runs the step again."""
    op = login()
    instance_id = assign(op, services, "TC-000001", "E1")
    step = Step(instance_id, "op", "TempCardsProcAssign", 1)
    with unit_of_work(services.sessions) as session:
        again = card_assignment.assign(session, step, holder_id(services, "E1"), {})
    assert again == {"ok": True, "error": None, "holder_id": holder_id(services, "E1")}
    print_letter(op, instance_id)
    op.submit(instance_id, {"action": "next"})

    withdrawing = start_on_card(op, "TC-000001", "TempCardsProcWithdraw")
    op.order_page(withdrawing)
    step = Step(withdrawing, "op", "TempCardsProcWithdraw", 1)
    with unit_of_work(services.sessions) as session:
        assert card_assignment.withdraw(session, step)["withdrawn"]
    with unit_of_work(services.sessions) as session:
        assert card_assignment.withdraw(session, step) == {"withdrawn": True, "revocations": 0}
        events = session.scalars(select(CardEvent.reason).where(CardEvent.card_id == 1)).all()
        assignments = session.scalars(select(Assignment).where(Assignment.card_id == 1)).all()
    assert sum(reason.startswith("Withdrawn from") for reason in events) == 1
    assert len(assignments) == 1 and assignments[0].end_reason == "Withdrawn."
