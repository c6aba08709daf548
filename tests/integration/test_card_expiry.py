"""A card whose validity ended becomes expired without anyone's action: the sweep every host runs,
recorded in the card's history and the audit trail, idempotent; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from engine.db import unit_of_work
from engine.store import AuditEvent
from engine.web.app import create_app
from tasks.card_life import ExpirySweep, expire_cards
from tasks.demo import add_requested_cards
from tasks.store import Assignment, Card, CardEvent, Holder, utcnow
from tests.web.conftest import PASSWORD, csrf_token

NOW = utcnow()
# number -> (state, valid until); only the valid cards past their date expire.
CARDS = {
    "TC-000001": ("unassigned", NOW - timedelta(days=1)),
    "TC-000002": ("assigned", NOW - timedelta(minutes=1)),
    "TC-000003": ("unassigned", NOW + timedelta(days=3)),
    "TC-000004": ("requested", None),
    "TC-000005": ("locked", NOW - timedelta(days=5)),
    "TC-000006": ("failed", NOW - timedelta(days=5)),
}


@pytest.fixture
def app_client(services, make_user):
    """An auditor logged in to the console."""
    make_user("audrey", "auditor", PASSWORD)
    client = create_app(services=services).test_client()
    token = csrf_token(client.get("/login").get_data(as_text=True))
    login = {"name": "audrey", "password": PASSWORD, "csrf_token": token}
    assert client.post("/login", data=login).status_code == 303
    return client


def seed(services) -> None:
    """The cards of CARDS, in their states."""
    with unit_of_work(services.sessions) as session:
        add_requested_cards(session, len(CARDS), "Test Organisation")
        for number, (state, valid_until) in CARDS.items():
            session.execute(update(Card).where(Card.number == number)
                            .values(state=state, valid_until=valid_until))


def states(services) -> dict[str, str]:
    """Card number -> state."""
    with unit_of_work(services.sessions) as session:
        return dict(session.execute(select(Card.number, Card.state)).all())


def test_cards_whose_validity_ended_expire_once_recorded_and_audited(services):
    services.sweeper.stop()  # this test runs the sweep itself
    seed(services)
    assert expire_cards(services.sessions, now=NOW) == 2
    assert states(services) == {"TC-000001": "expired", "TC-000002": "expired", "TC-000003": "unassigned",
                                "TC-000004": "requested", "TC-000005": "locked", "TC-000006": "failed"}
    with unit_of_work(services.sessions) as session:
        events = session.execute(select(Card.number, CardEvent.from_state, CardEvent.to_state,
                                        CardEvent.actor, CardEvent.reason)
                                 .join(Card, Card.id == CardEvent.card_id)
                                 .where(CardEvent.to_state == "expired").order_by(Card.number)).all()
        day = CARDS["TC-000001"][1]
        assert [tuple(event) for event in events] == [
            ("TC-000001", "unassigned", "expired", "expiry", f"Validity ended on {day:%Y-%m-%d %H:%M} UTC."),
            ("TC-000002", "assigned", "expired", "expiry",
             f"Validity ended on {CARDS['TC-000002'][1]:%Y-%m-%d %H:%M} UTC.")]
        trail = session.execute(select(AuditEvent.card, AuditEvent.actor, AuditEvent.detail)
                                .where(AuditEvent.action == "card state changed",
                                       AuditEvent.detail["to"].as_string() == "expired")
                                .order_by(AuditEvent.card)).all()
        assert [(card, actor, detail["from"]) for card, actor, detail in trail] == [
            ("TC-000001", "expiry", "unassigned"), ("TC-000002", "expiry", "assigned")]
    # Again, on this host or another: nothing left to do, nothing recorded twice.
    assert expire_cards(services.sessions, now=NOW) == 0
    with unit_of_work(services.sessions) as session:
        assert len(session.scalars(select(CardEvent).where(CardEvent.to_state == "expired")).all()) == 2


def test_an_expired_cards_assignment_ends(services):
    services.sweeper.stop()
    seed(services)
    with unit_of_work(services.sessions) as session:
        holder = Holder(identifier="e-100", name="Ada Lovelace", name_key="ada lovelace",
                        email="ada@example.org", unit="R&D")
        session.add(holder)
        session.flush()
        card = session.scalar(select(Card).where(Card.number == "TC-000002"))
        card.holder_id = holder.id
        session.add(Assignment(card_id=card.id, holder_id=holder.id, assigned_by="op"))
    expire_cards(services.sessions, now=NOW)
    with unit_of_work(services.sessions) as session:
        assignment = session.scalar(select(Assignment))
        assert assignment.ended_by == "expiry" and assignment.end_reason == "Card expired."
        assert assignment.ended_at is not None


def test_the_card_page_shows_the_expiry(services, app_client):
    services.sweeper.stop()
    seed(services)
    expire_cards(services.sessions, now=NOW)
    page = app_client.get("/cards/TC-000001").get_data(as_text=True)
    assert "expired" in page and "Validity ended on" in page and "/start/" not in page


def test_every_host_sweeps_for_expired_cards_at_most_once_a_minute(services):
    services.sweeper.stop()
    assert isinstance(services.sweeper.sweeps["card expiry"], ExpirySweep)
    seed(services)
    sweep = ExpirySweep(services.sessions, every=60.0)
    assert sweep() == 2
    with unit_of_work(services.sessions) as session:
        session.execute(update(Card).where(Card.number == "TC-000003")
                        .values(valid_until=NOW - timedelta(hours=1)))
    assert sweep() == 0  # within the minute: not even a query
    assert states(services)["TC-000003"] == "unassigned"
    assert ExpirySweep(services.sessions, every=0.0)() == 1
    assert states(services)["TC-000003"] == "expired"
