"""Fault tests for the crash-safety defects found on the old design (issue 8), on both databases.

Each test puts the system exactly at the point where the defect struck (a worker paused past its
claim, a crash between recording and revoking, an error that cannot be saved, a host that died
mid-step, another process holding an instance, a raw database error) and shows the outcome.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

import engine.runtime as runtime_module
from engine.db import unit_of_work
from engine.leases import _take
from engine.store import AuditEvent, Instance, utcnow
from tasks import orders, production
from tasks.cardsdk.records import IssuedCertificate
from tasks.store import Card, Order, OrderCard, ProductionAttempt, RevocationRequest
from tests.integration.flow import (
    add_cards,
    next_pressed_then_host_died,
    order_id,
    select_and_issue,
    settle,
    start,
)


class PausingStation:
    """A station that stops at a chosen point, as a SIGSTOP or a VM stall would stop a worker."""

    def __init__(self, inner, pause_before_encoding: bool):
        self.inner, self.name, self.encoder = inner, "paused-station", inner.encoder
        self.before = pause_before_encoding
        self.paused, self.go_on = threading.Event(), threading.Event()

    def produce(self, job, label):
        if self.before:
            self.paused.set()
            self.go_on.wait(30)
        result = self.inner.produce(job, label)
        if not self.before:
            self.paused.set()
            self.go_on.wait(30)
        return result

    def spoil(self, ref, reason):
        return self.inner.spoil(ref, reason)


class Killed(BaseException):
    """The worker process dies here (kill -9): nothing after this line runs."""


def _reserved_order(services, cards: int) -> int:
    """An order whose cards are reserved and pending, produced by nobody yet."""
    add_cards(services, cards)
    instance_id, task = start(services)
    select_and_issue(services, instance_id, task, list(range(1, cards + 1)))
    oid = order_id(services, instance_id)
    with unit_of_work(services.sessions) as session:
        session.execute(update(Order).where(Order.id == oid).values(cards_outstanding=cards))
    return oid


def _lapse_claims(services) -> None:
    """The clock passes every claim's end (the worker stopped renewing: paused or dead)."""
    with unit_of_work(services.sessions) as session:
        session.execute(update(OrderCard).where(OrderCard.status == "claimed")
                        .values(claimed_until=utcnow() - timedelta(seconds=1)))


# The option's PIV Authentication, and Card Authentication, which every encoded card gets.
CERTIFICATES_PER_CARD = 2


def _valid_certificates(services, ref: str) -> int:
    with unit_of_work(services.sessions) as session:
        return len(session.scalars(select(IssuedCertificate).where(
            IssuedCertificate.attempt_ref == ref, IssuedCertificate.revoked_at.is_(None))).all())


def _attempts(services, oid: int) -> list[tuple[int, int, str]]:
    with unit_of_work(services.sessions) as session:
        return [(a.card_id, a.attempt, a.outcome) for a in session.scalars(
            select(ProductionAttempt).where(ProductionAttempt.order_id == oid)
            .order_by(ProductionAttempt.card_id, ProductionAttempt.attempt))]


@pytest.mark.parametrize("pause_before_encoding", [False, True], ids=["paused-after-encoding",
                                                                      "paused-before-encoding"])
def test_a_worker_paused_past_its_claim_can_record_nothing(services, pause_before_encoding):
    oid = _reserved_order(services, 1)
    station = PausingStation(services.station, pause_before_encoding)
    paused_worker = replace(services.production, station=station, worker="paused@host:1", claim_seconds=60)
    outcome: list[str] = []
    worker = threading.Thread(target=lambda: outcome.append(production.produce_card(paused_worker, oid, 1)))
    worker.start()
    assert station.paused.wait(30)
    first_ref = production.attempt_ref(oid, 1, 1)

    # Another host's sweeper takes the card over; the operator repeats it on a live station.
    _lapse_claims(services)
    assert production.reap_lapsed_claims(services.production) == 1
    with unit_of_work(services.sessions) as session:
        session.get(OrderCard, (oid, 1)).status = "pending"
        session.execute(update(Order).where(Order.id == oid).values(cards_outstanding=1))
    assert production.produce_card(services.production, oid, 1) == "produced"

    station.go_on.set()  # the paused worker wakes up and carries on as if nothing happened
    worker.join(30)
    assert outcome == ["lost"]
    assert _attempts(services, oid) == [(1, 1, "interrupted"), (1, 2, "produced")]
    with unit_of_work(services.sessions) as session:
        assert session.get(Card, 1).state == "unassigned"
        assert session.get(OrderCard, (oid, 1)).status == "produced"
    assert _valid_certificates(services, first_ref) == 0
    assert _valid_certificates(services, production.attempt_ref(oid, 1, 2)) == CERTIFICATES_PER_CARD


def test_certificates_are_revoked_although_the_crash_fell_between_recording_and_revoking(services):
    oid = _reserved_order(services, 1)

    class DiesAfterEncoding:
        name, encoder = services.station.name, services.station.encoder

        def produce(self, job, label):
            services.station.encoder.encode(job)
            raise Killed

    with pytest.raises(Killed):
        production.produce_card(replace(services.production, station=DiesAfterEncoding()), oid, 1)
    ref = production.attempt_ref(oid, 1, 1)
    assert _valid_certificates(services, ref) == CERTIFICATES_PER_CARD

    # The host that takes over records the interruption, then dies before revoking.
    spoil = services.station.spoil
    services.station.spoil = lambda *_args: (_ for _ in ()).throw(Killed())
    _lapse_claims(services)
    with pytest.raises(Killed):
        production.reap_lapsed_claims(services.production)
    services.station.spoil = spoil
    assert _attempts(services, oid) == [(1, 1, "interrupted")]
    assert _valid_certificates(services, ref) == CERTIFICATES_PER_CARD  # the window the old design left open
    with unit_of_work(services.sessions) as session:
        queued = session.scalars(select(RevocationRequest)).all()
        assert [(r.attempt_ref, r.done_at) for r in queued] == [(ref, None)]

    # Whichever host sweeps next drains the queue.
    services.sweeper.run_once()
    assert _valid_certificates(services, ref) == 0
    with unit_of_work(services.sessions) as session:
        assert session.scalars(select(RevocationRequest.done_at)).one() is not None


def test_an_error_that_cannot_be_saved_does_not_leave_the_order_running(services, monkeypatch):
    add_cards(services, 1)
    instance_id, task = start(services)
    fail_next_save = threading.Event()

    def reserve_fails(params, context):
        if not fail_next_save.is_set() and not getattr(reserve_fails, "failed", False):
            reserve_fails.failed = True
            fail_next_save.set()  # the database refuses the save of this very error
        raise RuntimeError("the card reader is unplugged")

    real_unit_of_work = runtime_module.unit_of_work

    def flaky_unit_of_work(sessions):
        if fail_next_save.is_set():
            fail_next_save.clear()
            raise OperationalError("UPDATE instances SET status=?", {}, Exception("database is locked"))
        return real_unit_of_work(sessions)

    monkeypatch.setitem(services.registry._handlers, "cards_reserve", reserve_fails)
    monkeypatch.setattr(runtime_module, "unit_of_work", flaky_unit_of_work)
    select_and_issue_no_wait(services, instance_id, task)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and services.runtime.view(instance_id).status == "running":
        time.sleep(0.2)
    view = services.runtime.view(instance_id)
    assert view.status == "error"
    assert "the card reader is unplugged" in view.error


def select_and_issue_no_wait(services, instance_id, task) -> None:
    with unit_of_work(services.sessions) as session:
        count = orders.stage_selection(session, order_id(services, instance_id), card_ids=[1])
    services.runtime.complete_task(instance_id, task.task_id,
                                   {"action": "issue", "selection": {"selected": count}}, "op")


def test_a_surviving_host_takes_over_an_order_whose_host_died_mid_step(services):
    # A host completed "Next" and died in the engine step after it, holding the lease.
    instance_id = next_pressed_then_host_died(services, 2)
    with unit_of_work(services.sessions) as session:
        session.execute(update(Instance).where(Instance.id == instance_id).values(
            locked_by="dead-host", locked_until=utcnow() - timedelta(seconds=1),
            updated_at=utcnow() - timedelta(seconds=10)))
    started = time.monotonic()
    # No restart: the running host's sweeper notices within seconds.
    task = settle(services, instance_id)
    assert task.bpmn_id == "Activity_Review"
    assert time.monotonic() - started < 15
    with unit_of_work(services.sessions) as session:
        resumed = session.scalars(select(AuditEvent).where(AuditEvent.instance_id == instance_id,
                                                           AuditEvent.action == "instance resumed")).all()
    assert resumed and "mid-step" in resumed[0].detail["after"]


def test_the_runner_leaves_an_instance_another_process_holds_instead_of_spinning(services, monkeypatch):
    instance_id, _task = start(services)
    assert _take(services.sessions, instance_id, "another-process", fresh=True)
    calls: list[str] = []
    advance = services.runtime.advance
    monkeypatch.setattr(services.runtime, "advance", lambda iid: (calls.append(iid), advance(iid)))
    services.runner.advance(instance_id)
    deadline = time.monotonic() + 15
    while services.runner.busy(instance_id) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not services.runner.busy(instance_id)
    assert 1 < len(calls) <= 8  # a few backed-off tries, not one every 0.2 s for minutes


def test_a_raw_database_error_never_reaches_the_operator(services, monkeypatch):
    add_cards(services, 1)
    instance_id, task = start(services)

    def reserve_hits_the_database(params, context):
        raise OperationalError("INSERT INTO reservations (card_id, order_id) VALUES (?, ?)",
                               {"card_id": 1, "pin": "123456"}, Exception("deadlock detected"))

    monkeypatch.setitem(services.registry._handlers, "cards_reserve", reserve_hits_the_database)
    select_and_issue_no_wait(services, instance_id, task)
    assert services.runner.wait(instance_id, 30)
    view = services.runtime.view(instance_id)
    assert view.status == "error"
    assert "INSERT" not in view.error and "123456" not in view.error and "reservations" not in view.error
    assert view.error == runtime_module.DATABASE_TROUBLE.format(kind="deadlock")


def test_jobs_a_broker_lost_are_sent_again_but_not_to_a_paused_pool(services):
    from tasks.store import StationStatus

    # This test runs the sweep itself: the background one, had it come between two of its calls,
    # would have sent the jobs first (seen once in CI, on a slow machine).
    services.sweeper.stop()
    oid = _reserved_order(services, 3)
    production.heartbeat(services.production)  # the pool's one station
    with unit_of_work(services.sessions) as session:
        session.execute(update(Order).where(Order.id == oid).values(
            dispatched_at=utcnow() - timedelta(seconds=60)))
    sent: list[tuple[str, str, dict]] = []
    ctx = replace(services.production, enqueue=lambda *job: sent.append(job))
    assert production.redispatch_lost_jobs(ctx, lambda _queue: 4) == 0  # jobs still queued
    with unit_of_work(services.sessions) as session:
        session.execute(update(StationStatus).values(paused=True))
    assert production.redispatch_lost_jobs(ctx, lambda _queue: 0) == 0  # the paused station holds them
    with unit_of_work(services.sessions) as session:
        session.execute(update(StationStatus).values(paused=False))
    assert production.redispatch_lost_jobs(ctx, lambda _queue: 0) == 3  # the queue lost them
    expected = [{"order_id": oid, "card_id": card} for card in (1, 2, 3)]
    assert [args for _queue, _kind, args in sent] == expected
    assert production.redispatch_lost_jobs(ctx, lambda _queue: 0) == 0  # not again at once
