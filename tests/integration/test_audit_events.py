"""Every security-relevant event of an order reaches the audit trail, once, in one chain."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from sqlalchemy import select

from engine import bootstrap
from engine.audit_chain import GENESIS, entry_hash
from engine.db import unit_of_work
from engine.store import AuditEvent, AuditHead
from tasks import orders
from tasks.cardsdk.records import IssuedCertificate
from tasks.store import ProductionAttempt
from tests.integration.flow import (
    add_cards,
    next_pressed_then_host_died,
    order_id,
    select_and_issue,
    settle,
    start,
    submit,
)


def trail(services, **where) -> list[AuditEvent]:
    """The audit entries (matching ``where``), oldest first."""
    with unit_of_work(services.sessions) as session:
        query = select(AuditEvent).order_by(AuditEvent.id)
        for column, value in where.items():
            query = query.where(getattr(AuditEvent, column) == value)
        return list(session.scalars(query))


def utc(moment: datetime) -> datetime:
    """A stored time in UTC (SQLite gives it back without its zone)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def assert_one_chain(entries: list[AuditEvent]) -> None:
    """Ids run 1, 2, 3... and each entry's hash follows from its predecessor's."""
    previous = GENESIS
    for number, entry in enumerate(entries, start=1):
        assert entry.id == number and entry.prev_hash == previous
        assert entry.hash == entry_hash(previous, entry), f"entry {entry.id} does not verify"
        previous = entry.hash


def test_an_order_leaves_every_step_in_the_trail(services):
    add_cards(services, 3)
    instance_id, task = start(services)
    task = select_and_issue(services, instance_id, task, [1, 2])
    task = submit(services, instance_id, task, {"action": "next"})
    oid = order_id(services, instance_id)
    with unit_of_work(services.sessions) as session:
        orders.request_repeat(session, oid, [], {2: "smudged"})
    task = submit(services, instance_id, task, {"action": "repeat"})
    assert submit(services, instance_id, task, {"action": "complete", "confirm_ok": True}) is None
    with unit_of_work(services.sessions) as session:
        card_id = session.scalar(select(ProductionAttempt.card_id).limit(1))
    services.station.encoder.custody.release(card_id, actor="aud-test")

    entries = trail(services)
    assert_one_chain(entries)
    actions = Counter(entry.action for entry in entries)
    assert actions["instance started"] == 1 and actions["instance completed"] == 1
    assert actions["order completed"] == 1 and actions["task completed"] == 4
    assert actions["attempt started"] == 3 and actions["attempt produced"] == 3
    # Each card carries PIV Authentication and Card Authentication (FIPS 201-3), and the CA made
    # its content signer (CHUID, Security Object) for the first card.
    assert actions["card spoiled"] == 1 and actions["certificate revoked"] == 2
    assert actions["certificate issued"] == 3 * 2 + 1 and actions["custody released"] == 1
    with unit_of_work(services.sessions) as session:
        recorded = {row.serial: row for row in session.scalars(
            select(IssuedCertificate).where(IssuedCertificate.card_number == "TC-000001"))}
    issued = trail(services, card="TC-000001", action="certificate issued")
    assert len(issued) == 2 and {entry.detail["serial"] for entry in issued} == set(recorded)
    for entry in issued:  # each entry tells the row it was recorded with
        row = recorded[entry.detail["serial"]]
        assert entry.actor == "ca" and entry.detail == {
            "serial": row.serial, "type": row.certificate_type, "slot": row.slot, "attempt": row.attempt_ref,
            "subject": row.subject, "not_after": utc(row.not_after).isoformat()}
    [ended] = [entry for entry in entries if entry.action == "instance completed"]
    assert ended.detail == {"end_event": "Order completed"}
    with unit_of_work(services.sessions) as session:  # the order's end signed the chain's head
        heads = session.scalars(select(AuditHead)).all()
    assert [(head.entry_id, head.hash) for head in heads] == [(ended.id, ended.hash)]
    assert heads[0].reason == f"instance {instance_id} ended"

    moves = trail(services, card="TC-000002", action="card state changed")
    assert [(e.detail["from"], e.detail["to"]) for e in moves] == [("requested", "unassigned"),
                                                                    ("unassigned", "unassigned")]
    moved = moves[0]
    assert (moved.detail["from"], moved.detail["to"], moved.order_id, moved.instance_id) == (
        "requested", "unassigned", oid, instance_id)
    steps = trail(services, order_id=oid, action="task completed")
    assert len(steps) == 4 and {step.instance_id for step in steps} == {instance_id}
    released = trail(services, action="custody released")[0]
    assert released.actor == "aud-test" and set(released.detail) == {"attempt", "released"}


def test_a_cancelled_order_is_recorded_as_cancelled(services):
    add_cards(services, 2)
    instance_id, task = start(services)
    task = select_and_issue(services, instance_id, task, [1])
    assert submit(services, instance_id, task, {"action": "cancel"}) is None
    actions = [entry.action for entry in trail(services, instance_id=instance_id)]
    assert "order cancelled" in actions and "order completed" not in actions
    [ended] = trail(services, instance_id=instance_id, action="instance completed")
    assert ended.detail["end_event"].startswith("Order cancelled")


def test_a_crash_mid_order_shows_as_a_resume_and_an_interrupted_attempt(services, settings):
    instance_id = next_pressed_then_host_died(services, 2)
    with unit_of_work(services.sessions) as session:
        session.add(ProductionAttempt(order_id=order_id(services, instance_id), card_id=1, attempt=1,
                                      outcome="started"))
    services.close()
    restarted = bootstrap.build_services(settings)
    try:
        bootstrap.resume_pending(restarted)
        settle(restarted, instance_id)
        [resumed] = trail(restarted, action="instance resumed")
        assert resumed.instance_id == instance_id
        [interrupted] = trail(restarted, action="attempt interrupted")
        assert interrupted.card == "TC-000001" and "interrupted" in interrupted.detail["error"].lower()
        assert_one_chain(trail(restarted))
    finally:
        restarted.close()
