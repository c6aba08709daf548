"""Custody gives a card's PIN and PUK out once, on both databases: two requests racing for the
same PIN letter get one letter and one refusal; the secrets are then erased, the release is
recorded once (without the values), and a card re-encoded since gets its new PIN out once more."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from engine import bootstrap
from engine.db import make_engine, make_sessions, unit_of_work
from engine.store import AuditEvent
from tasks.cardsdk.custody import Custody
from tasks.cardsdk.piv.errors import CustodyError
from tasks.cardsdk.records import CustodyRelease, CustodySecret
from tasks.demo import add_requested_cards

KEY = bytes(range(32))


@pytest.fixture
def custody(settings):
    """Custody on a migrated database (its sessions wired to the audit trail) with card 1's secrets."""
    bootstrap.init_database(settings)
    engine = make_engine(settings.database_url)
    sessions = make_sessions(engine)
    bootstrap.wire_domain_audit(sessions)
    with unit_of_work(sessions) as session:
        add_requested_cards(session, 1, "Test Organisation")
    custody = Custody(sessions, KEY)
    custody.store(1, "order-1/card-1/attempt-1",
                  {"pin": "123456", "puk": "12345678", "management_key": "00" * 24})
    yield custody
    engine.dispose()


def test_two_racing_requests_get_one_letter_and_one_refusal(custody):
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def request(actor: str) -> None:
        barrier.wait()
        try:
            outcomes.append(custody.release_once(1, actor))
        except CustodyError as error:
            outcomes.append(error)

    threads = [threading.Thread(target=request, args=(name,)) for name in ("op1", "op2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    letters = [item for item in outcomes if isinstance(item, dict)]
    refusals = [item for item in outcomes if isinstance(item, CustodyError)]
    assert len(letters) == 1 and len(refusals) == 1, outcomes
    assert letters[0]["pin"] == "123456" and letters[0]["puk"] == "12345678"
    assert "already given out" in str(refusals[0]) and "123456" not in str(refusals[0])

    with unit_of_work(custody.sessions) as session:
        secrets = session.scalars(select(CustodySecret).where(CustodySecret.card_id == 1))
        rows = {row.kind: row for row in secrets}
        releases = session.scalars(select(CustodyRelease).where(CustodyRelease.card_id == 1)).all()
        entries = session.scalars(select(AuditEvent).where(AuditEvent.action == "custody released")).all()
    assert rows["pin"].ciphertext == b"" and rows["puk"].ciphertext == b"" and rows["pin"].released_at
    assert rows["management_key"].ciphertext != b"" and rows["management_key"].released_at is None
    assert len(releases) == 1 and releases[0].kinds == "pin,puk"
    assert len(entries) == 1 and "123456" not in str(entries[0].detail)
    with pytest.raises(CustodyError, match="already given out"):
        custody.release(1)  # the engineering path cannot read them either


def test_a_reencoded_card_gives_its_new_pin_out_once(custody):
    assert custody.release_once(1, "op")["pin"] == "123456"
    custody.store(1, "order-2/card-1/attempt-1", {"pin": "654321", "puk": "87654321"})
    assert custody.release_once(1, "op")["pin"] == "654321"
    with pytest.raises(CustodyError):
        custody.release_once(1, "op")
    with pytest.raises(CustodyError, match="not encoded"):
        custody.release_once(99, "op")
