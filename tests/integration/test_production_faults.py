"""Cards that fail mid-encoding end as failed with a readable reason; Repeat production then works."""

from __future__ import annotations

from sqlalchemy import select

from engine import bootstrap
from engine.db import unit_of_work
from tasks import orders
from tasks.cardsdk.ca import LocalCA, ca_folder
from tasks.cardsdk.custody import Custody, load_or_create_key
from tasks.cardsdk.encoder import Encoder
from tasks.cardsdk.job import CardSdkError
from tasks.cardsdk.piv import profiles
from tasks.cardsdk.piv.transport import InProcessTransport
from tasks.cardsdk.piv.virtual_card import VirtualPivCard
from tasks.cardsdk.printer import SpoolPrinter
from tasks.cardsdk.records import IssuedCertificate
from tasks.cardsdk.station import Station
from tasks.store import CardEvent, ProductionAttempt, StationStatus
from tests.cardsdk.faults import FaultyCard
from tests.conftest import start_services
from tests.integration.flow import add_cards, card_states, order_id, select_and_issue, start, submit


def faulty_cards() -> list[FaultyCard]:
    """The blank cards the station takes first, in order; good stock follows."""
    return [
        FaultyCard(0x47, bytes.fromhex("6982"), 1),  # key generation refused
        FaultyCard(0x24, bytes.fromhex("6A80"), 1),  # PIN change: wrong data
        FaultyCard(0xDB, b"\x90", 1),  # garbage answer to PUT DATA
        FaultyCard(0xDB, None, 2),  # pulled out of the reader mid-encoding
    ]


class CardStock:
    """A card source that hands out the faulty cards first, then healthy blank cards."""

    def __init__(self, cards):
        self.cards = list(cards)

    def next_card(self) -> InProcessTransport:
        return InProcessTransport(self.cards.pop(0) if self.cards else VirtualPivCard())


def faulty_station(settings):
    def build(sessions):
        ca = LocalCA(ca_folder(settings.instance_path), settings.ca_passphrase, sessions)
        custody = Custody(sessions, load_or_create_key(settings.instance_path))
        encoder = Encoder(CardStock(faulty_cards()), ca, custody, profiles.get("piv-3des-p256"))
        return Station(SpoolPrinter(), encoder, "faulty")
    return build


def test_faulty_cards_fail_readably_then_repeat_production_succeeds(settings):
    start_services(settings).close()
    services = bootstrap.build_services(settings, faulty_station(settings))
    try:
        add_cards(services, 5)
        instance_id, task = start(services)
        task = select_and_issue(services, instance_id, task, [1, 2, 3, 4, 5])
        task = submit(services, instance_id, task, {"action": "next"})
        assert task.bpmn_id == "Activity_Review"
        states = card_states(services)
        assert [states[f"TC-00000{i}"] for i in range(1, 6)] == ["failed"] * 4 + ["unassigned"]
        with unit_of_work(services.sessions) as session:
            attempts = session.scalars(select(ProductionAttempt).order_by(ProductionAttempt.card_id))
            errors = [attempt.error for attempt in attempts]
            reasons = session.scalars(select(CardEvent.reason).where(CardEvent.to_state == "failed")).all()
            revoked = session.scalars(select(IssuedCertificate).where(
                IssuedCertificate.revoked_at.is_not(None))).all()
        assert "6982" in errors[0] and "6A80" in errors[1]
        assert "too short" in errors[2] or "malformed" in errors[2].lower()
        assert "removed during encoding" in errors[3]
        assert errors[4] is None
        assert all(reason.startswith("Production failed: ") for reason in reasons) and len(reasons) == 4
        # Certificates issued before a card failed (at its PIN change, at writing them, or after)
        # are revoked; a card refused at key generation got none.
        assert {c.attempt_ref for c in revoked} == {"order-1/card-2/attempt-1", "order-1/card-3/attempt-1",
                                                    "order-1/card-4/attempt-1"}

        with unit_of_work(services.sessions) as session:
            orders.request_repeat(session, order_id(services, instance_id), [1, 2, 3, 4], {})
        task = submit(services, instance_id, task, {"action": "repeat"})
        assert set(card_states(services).values()) == {"unassigned"}
        assert submit(services, instance_id, task, {"action": "complete", "confirm_ok": True}) is None
    finally:
        services.close()


class JamsOnTheFirstAttemptOfCardOne(SpoolPrinter):
    """A printer that jams on card 1's first print, after its chip took its data."""

    def spool(self, job, card):
        if job.card_id == 1 and card.stem == "card-1-attempt-1":
            raise CardSdkError("The printer jammed.")
        return super().spool(job, card)


def test_a_card_whose_print_failed_after_encoding_is_recorded_failed_and_its_certificates_revoked(settings):
    start_services(settings).close()

    def build(sessions):
        ca = LocalCA(ca_folder(settings.instance_path), settings.ca_passphrase, sessions)
        custody = Custody(sessions, load_or_create_key(settings.instance_path))
        encoder = Encoder(CardStock([]), ca, custody, profiles.get("piv-3des-p256"))
        return Station(JamsOnTheFirstAttemptOfCardOne(), encoder, "jamming")

    services = bootstrap.build_services(settings, build)
    try:
        add_cards(services, 2)
        instance_id, task = start(services)
        task = select_and_issue(services, instance_id, task, [1, 2])
        task = submit(services, instance_id, task, {"action": "next"})
        assert task.bpmn_id == "Activity_Review"  # the batch ended once, each card counted once
        assert card_states(services) == {"TC-000001": "failed", "TC-000002": "unassigned"}
        with unit_of_work(services.sessions) as session:
            attempts = session.execute(select(ProductionAttempt.card_id, ProductionAttempt.outcome,
                                              ProductionAttempt.error, ProductionAttempt.files)
                                       .order_by(ProductionAttempt.card_id)).all()
            reasons = session.scalars(select(CardEvent.reason).where(CardEvent.card_id == 1,
                                                                   CardEvent.order_id.is_not(None))).all()
            certificates = session.execute(select(IssuedCertificate.attempt_ref, IssuedCertificate.revoked_at)
                                           .where(IssuedCertificate.card_number.is_not(None))).all()
            station = session.get(StationStatus, "jamming")
        assert attempts == [(1, "failed", "The printer jammed.", []),
                            (2, "produced", None, attempts[1].files)] and len(attempts[1].files) == 3
        assert reasons == ["Production failed: The printer jammed."]
        assert {ref for ref, revoked in certificates if revoked} == {"order-1/card-1/attempt-1"}
        assert {ref for ref, revoked in certificates if not revoked} == {"order-1/card-2/attempt-1"}
        assert (station.cards_produced, station.cards_failed) == (1, 1)
        spool = settings.spool_path / "order-1"
        assert not list(spool.glob("card-1-attempt-1*")) and len(list(spool.glob("card-2-attempt-1*"))) == 3

        with unit_of_work(services.sessions) as session:
            orders.request_repeat(session, order_id(services, instance_id), [1], {})
        task = submit(services, instance_id, task, {"action": "repeat"})
        assert set(card_states(services).values()) == {"unassigned"}
    finally:
        services.close()
