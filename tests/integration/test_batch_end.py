"""A batch of cards ends exactly once, after its last card, on both databases.

"Produce cards" and "Repeat production" dispatch a batch in an engine step; the instance then
waits at "Cards produced" until every card of the batch has an outcome. The engine saves the
step after it ran, so a host that dies in between leaves the step to run again on the host that
resumes the instance, while the batch the first run dispatched is already at the stations. Each
test puts the system at that point, with the stations driven by hand, and shows that Review
production opens only once every card has its outcome (issue 8: a kill -9 under load left 15 of
200 cards without an outcome after Review production and Repeat production).
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace

from sqlalchemy import select

from engine.db import unit_of_work
from engine.runtime import Runtime
from engine.store import Instance, InstanceMessage
from tasks import orders, production
from tasks.cardsdk.job import CardSdkError
from tasks.store import OrderCard, ProductionAttempt
from tests.integration.flow import next_pressed_then_host_died, order_id, settle


class HeldStation:
    """A station that stops mid-card until told to go on: a card at a printer right now."""

    def __init__(self, inner):
        self.inner, self.name, self.encoder = inner, "held-station", inner.encoder
        self.inside, self.go_on = threading.Event(), threading.Event()

    def produce(self, job, label):
        self.inside.set()
        assert self.go_on.wait(30), "the test never let the held card go on"
        return self.inner.produce(job, label)

    def spoil(self, ref, reason):
        return self.inner.spoil(ref, reason)


class JammedStation:
    """A station whose printer jams on every card: the card fails with a reason."""

    def __init__(self, inner):
        self.inner, self.name, self.encoder = inner, inner.name, inner.encoder

    def produce(self, job, label):
        raise CardSdkError("The printer jammed.")

    def spoil(self, ref, reason):
        return self.inner.spoil(ref, reason)


def _queued_jobs(services, monkeypatch) -> list[int]:
    """The cards whose jobs the steps queue from now on; the test runs them by hand, and resumes
    the instance by hand where a sweeper would (the sweeper is stopped, so it never does so in
    between)."""
    services.sweeper.stop()
    jobs: list[int] = []
    monkeypatch.setattr(services.production, "enqueue",
                        lambda _queue, _kind, args: jobs.append(args["card_id"]))
    return jobs


def _engine_steps_done(services, instance_id: str) -> str | None:
    """Wait for this host's engine steps of the instance; what it waits for then."""
    deadline = time.monotonic() + 30
    while services.runner.busy(instance_id) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not services.runner.busy(instance_id), "the engine steps did not end"
    with unit_of_work(services.sessions) as session:
        instance = session.get(Instance, instance_id)
        assert instance.status == "running", instance.error
        return instance.waiting_for


def _hold_card(services, oid: int, card_id: int) -> tuple[HeldStation, threading.Thread, list[str]]:
    """Card ``card_id`` claimed by a station that is producing it right now."""
    station = HeldStation(services.station)
    held = replace(services.production, station=station, worker="held@host:1", claim_seconds=60)
    outcome: list[str] = []
    worker = threading.Thread(target=lambda: outcome.append(production.produce_card(held, oid, card_id)))
    worker.start()
    assert station.inside.wait(30), "the held station never started its card"
    return station, worker, outcome


def _produce(services, oid: int, card_ids: list[int]) -> list[str]:
    return [production.produce_card(services.production, oid, card_id) for card_id in card_ids]


def _messages(services, instance_id: str) -> list[tuple[str, bool]]:
    """The instance's posted messages: name, and whether delivered."""
    with unit_of_work(services.sessions) as session:
        return [(name, delivered is not None) for name, delivered in session.execute(
            select(InstanceMessage.name, InstanceMessage.delivered_at)
            .where(InstanceMessage.instance_id == instance_id).order_by(InstanceMessage.id))]


def _card_table(services, oid: int) -> str:
    """Every card of the order with its status, claim token and attempts: what a failure shows."""
    with unit_of_work(services.sessions) as session:
        attempts: dict[int, list[str]] = {}
        for attempt in session.scalars(select(ProductionAttempt).where(ProductionAttempt.order_id == oid)
                                       .order_by(ProductionAttempt.card_id, ProductionAttempt.attempt)):
            attempts.setdefault(attempt.card_id, []).append(f"{attempt.attempt}:{attempt.outcome}")
        return "; ".join(f"card {item.card_id} {item.status} token {item.claim_token} "
                         f"attempts {attempts.get(item.card_id, [])}"
                         for item in session.scalars(select(OrderCard).where(OrderCard.order_id == oid)
                                                     .order_by(OrderCard.card_id)))


def _produced_once_each(services, oid: int) -> list[int]:
    with unit_of_work(services.sessions) as session:
        return sorted(session.scalars(select(ProductionAttempt.card_id).where(
            ProductionAttempt.order_id == oid, ProductionAttempt.outcome == "produced")))


def test_produce_cards_run_again_after_its_host_died_waits_for_the_card_at_a_station(services, monkeypatch):
    jobs = _queued_jobs(services, monkeypatch)
    instance_id = next_pressed_then_host_died(services, 4)
    oid = order_id(services, instance_id)
    # The host that took the step ran "Produce cards", then died before the engine saved it.
    production.dispatch_order(services.production, oid)
    assert jobs == [1, 2, 3, 4]
    # The stations carry on: one holds card 1 at its printer, another produced card 2.
    station, worker, outcome = _hold_card(services, oid, 1)
    assert _produce(services, oid, [2]) == ["produced"]

    # The dead host's lease lapses; a sweeper resumes the instance: "Produce cards" runs again.
    jobs.clear()
    services.runner.advance(instance_id)
    assert _engine_steps_done(services, instance_id) == "message"
    assert sorted(jobs) == [3, 4]  # only the cards that still wait are queued again
    assert _produce(services, oid, jobs) == ["produced", "produced"]
    waiting = _engine_steps_done(services, instance_id)
    assert waiting == "message", f"Review opened with card 1 at a station: {_card_table(services, oid)}"

    station.go_on.set()
    worker.join(30)
    assert outcome == ["produced"]
    assert settle(services, instance_id).bpmn_id == "Activity_Review"
    assert _produced_once_each(services, oid) == [1, 2, 3, 4]
    assert _messages(services, instance_id) == [(production.CARDS_PRODUCED, True)]


def test_a_batch_that_ended_before_its_step_was_saved_does_not_end_the_next_batch(services, monkeypatch):
    jobs = _queued_jobs(services, monkeypatch)
    instance_id = next_pressed_then_host_died(services, 2)
    oid = order_id(services, instance_id)
    production.dispatch_order(services.production, oid)  # the dead host's run of "Produce cards"
    # Both cards get their outcome before any host resumed the instance. The last one hands the
    # instance to a host, which runs "Produce cards" again: the batch has ended already.
    assert _produce(services, oid, [1]) == ["produced"]
    jammed = replace(services.production, station=JammedStation(services.station))
    assert production.produce_card(jammed, oid, 2) == "failed"
    assert settle(services, instance_id).bpmn_id == "Activity_Review"

    # The operator repeats the jammed card: the order waits for it, not for an older message.
    with unit_of_work(services.sessions) as session:
        orders.request_repeat(session, oid, [2], {})
    task = services.runtime.ready_task(instance_id)
    jobs.clear()
    services.runtime.complete_task(instance_id, task.task_id, {"action": "repeat"}, "op")
    waiting = _engine_steps_done(services, instance_id)
    assert waiting == "message", f"Review opened again before card 2's repeat: {_card_table(services, oid)}"
    assert jobs == [2]
    assert _produce(services, oid, jobs) == ["produced"]
    assert settle(services, instance_id).bpmn_id == "Activity_Review"
    assert _produced_once_each(services, oid) == [1, 2]
    assert _messages(services, instance_id) == [(production.CARDS_PRODUCED, True)] * 2  # one a batch


def test_repeat_production_run_again_after_its_host_died_waits_for_the_repeated_card(services, monkeypatch):
    jobs = _queued_jobs(services, monkeypatch)
    instance_id = next_pressed_then_host_died(services, 2)
    oid = order_id(services, instance_id)
    services.runner.advance(instance_id)
    assert _engine_steps_done(services, instance_id) == "message"
    jammed = replace(services.production, station=JammedStation(services.station))
    assert _produce(services, oid, [1]) == ["produced"]
    assert production.produce_card(jammed, oid, 2) == "failed"
    task = settle(services, instance_id)
    assert task.bpmn_id == "Activity_Review"

    # Repeat production of card 2 is pressed on a host that runs the step and dies before saving it.
    with unit_of_work(services.sessions) as session:
        orders.request_repeat(session, oid, [2], {})
    queued: list[str] = []
    Runtime(services.sessions, services.registry, queued.append).complete_task(
        instance_id, task.task_id, {"action": "repeat"}, "op")
    jobs.clear()
    production.repeat_order(services.production, oid)
    assert jobs == [2]
    station, worker, outcome = _hold_card(services, oid, 2)  # at a printer right now

    # Another host resumes the instance: "Repeat production" runs again.
    services.runner.advance(instance_id)
    waiting = _engine_steps_done(services, instance_id)
    assert waiting == "message", f"Review opened with card 2 at a station: {_card_table(services, oid)}"
    station.go_on.set()
    worker.join(30)
    assert outcome == ["produced"]
    assert settle(services, instance_id).bpmn_id == "Activity_Review"
    assert _produced_once_each(services, oid) == [1, 2]
    assert [delivered for _name, delivered in _messages(services, instance_id)] == [True, True]
