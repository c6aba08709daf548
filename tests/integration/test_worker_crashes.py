"""kill -9 and SIGSTOP of real processes in the middle of an order: a station worker killed at
seeded random points of a 200-card order, a worker paused past its claim, the web server killed
mid-production. No card is produced twice, none is lost, every interruption is recorded and
audited, and no certificate of an interrupted attempt stays valid.

``CARDFLOW_CRASH_SEED`` picks other kill points (the seed is printed when a test fails).
"""

from __future__ import annotations

import os
import random
import signal
import time

import pytest
from kombu import Connection
from sqlalchemy import func, select

from engine.celery_jobs import QUEUE_PREFIX_ENV, broker_queue
from engine.db import unit_of_work
from engine.runtime import Runtime
from engine.store import AuditEvent, Instance, InstanceMessage
from tasks import orders
from tasks.cardsdk.records import IssuedCertificate
from tasks.production import attempt_ref, pool_queue
from tasks.store import Card, Order, OrderCard, ProductionAttempt
from tests.conftest import make_settings, start_services
from tests.integration.flow import add_cards, order_id, settle, start
from tests.integration.workers import (
    REDIS_URL,
    WebServer,
    Workers,
    complete,
    delete_queues,
    issue,
    submit_and_settle,
    unique_prefix,
    web_services,
    write_stations,
)

SEED = int(os.environ.get("CARDFLOW_CRASH_SEED", "20261124"))
CLAIM_SECONDS = "2"


class CrashWorkers(Workers):
    """Workers whose claims lapse after 2 s, so a takeover is quick enough for a test."""

    def env(self) -> dict[str, str]:
        return {**super().env(), "CARDFLOW_CLAIM_SECONDS": CLAIM_SECONDS}

    def start(self, *stations: str, concurrency: int = 1) -> None:
        """Start the stations; the log of a station's earlier process is kept beside (a failure
        shows what every process of the test logged)."""
        for station in stations:
            log = self.logs / f"{station}.log"
            if log.exists():
                log.rename(self.logs / f"{station}.{len(list(self.logs.glob(f'{station}.*.log'))) + 1}.log")
        super().start(*stations, concurrency=concurrency)

    def kill(self, station: str, how: int = signal.SIGKILL) -> None:
        process = self.processes.pop(station)
        process.send_signal(how)
        process.wait(10)

    def notable_lines(self, limit: int = 60) -> str:
        """What the workers logged about claims, instances and errors, process by process."""
        lines = []
        for path in sorted(self.logs.glob("*.log")):
            for line in path.read_text(errors="replace").splitlines():
                if any(word in line for word in ("lapsed", "lost", "resumed", "below zero", "ERROR",
                                                 "Error", "deadlock", "stopped on")):
                    lines.append(f"{path.stem}: {line[:300]}")
        return "\n".join(lines[-limit:])


@pytest.fixture
def crash_cluster(tmp_path, postgres_url, monkeypatch):
    """Web side and two stations, victim and survivor, on Redis and PostgreSQL."""
    settings = make_settings(tmp_path / "instance", postgres_url)
    prefix = unique_prefix()
    monkeypatch.setenv(QUEUE_PREFIX_ENV, prefix)
    services = web_services(settings, REDIS_URL)
    stations = write_stations(tmp_path / "stations.toml", ["victim", "survivor"], device_seconds=0.2)
    workers = CrashWorkers(settings, REDIS_URL, prefix, stations, tmp_path / "logs")
    try:
        yield services, workers
    finally:
        workers.stop()
        services.close()
        delete_queues(REDIS_URL, prefix, ["default"])


def _start_order(services, cards: int) -> tuple[str, int]:
    add_cards(services, cards)
    instance_id, task = start(services)
    task = issue(services, instance_id, task, cards)
    assert task.bpmn_id == "Activity_SelectedCards"
    complete(services, instance_id, task, {"action": "next"})
    return instance_id, order_id(services, instance_id)


def order_dump(services, oid: int, workers: CrashWorkers | None = None) -> str:
    """What a failure shows: the order's batch counter and messages, how many cards are in each
    status, and every card that is not produced exactly once with its claim and attempts."""
    with unit_of_work(services.sessions) as session:
        order = session.get(Order, oid)
        messages = session.execute(select(InstanceMessage.id, InstanceMessage.name,
                                          InstanceMessage.created_at, InstanceMessage.delivered_at)
                                   .where(InstanceMessage.instance_id == order.instance_id)
                                   .order_by(InstanceMessage.id)).all()
        attempts: dict[int, list[ProductionAttempt]] = {}
        for attempt in session.scalars(select(ProductionAttempt).where(ProductionAttempt.order_id == oid)
                                       .order_by(ProductionAttempt.card_id, ProductionAttempt.attempt)):
            attempts.setdefault(attempt.card_id, []).append(attempt)
        items = session.scalars(select(OrderCard).where(OrderCard.order_id == oid)
                                .order_by(OrderCard.card_id)).all()
        states = {card.id: card.state for card in session.scalars(select(Card))}
    statuses: dict[str, int] = {}
    for item in items:
        statuses[item.status] = statuses.get(item.status, 0) + 1
    lines = [f"seed {SEED}; order {oid} {order.status}, cards_outstanding {order.cards_outstanding}, "
             f"dispatched {order.dispatched_at}; cards by status {statuses}",
             "messages: " + "; ".join(f"#{m.id} {m.name} posted {m.created_at} delivered {m.delivered_at}"
                                      for m in messages)]
    for item in items:
        tried = attempts.get(item.card_id, [])
        if item.status == "produced" and [a.outcome for a in tried].count("produced") == 1:
            continue
        lines.append(
            f"card {item.card_id} ({states.get(item.card_id)}): {item.status}, token {item.claim_token}, "
            f"claimed by {item.claimed_by} until {item.claimed_until}; attempts: " + ", ".join(
                f"{a.attempt} {a.outcome} on {a.station} ({a.worker}) {a.started_at}..{a.finished_at}"
                for a in tried))
    if workers is not None:
        lines.append("workers logged:\n" + workers.notable_lines())
    return "\n".join(lines)


def _repeat_failed_until_all_produced(services, instance_id: str, oid: int, workers=None) -> None:
    """Review production: the operator repeats the failed (interrupted) cards until none is left."""
    for _round in range(10):
        task = settle(services, instance_id)
        assert task.bpmn_id == "Activity_Review", order_dump(services, oid, workers)
        with unit_of_work(services.sessions) as session:
            failed = list(session.scalars(select(OrderCard.card_id).where(
                OrderCard.order_id == oid, OrderCard.status == "failed")))
            if not failed:
                return
            orders.request_repeat(session, oid, failed, {})
        complete(services, instance_id, task, {"action": "repeat"})
    raise AssertionError("cards still failed after 10 rounds of Repeat production")


def _assert_every_card_once_and_every_interruption_recorded(services, oid: int, cards: int,
                                                            workers=None) -> int:
    """The invariants after the crashes; returns how many attempts were interrupted."""
    with unit_of_work(services.sessions) as session:
        attempts = session.scalars(select(ProductionAttempt).where(ProductionAttempt.order_id == oid)).all()
        produced = [a.card_id for a in attempts if a.outcome == "produced"]
        assert sorted(produced) == list(range(1, cards + 1)), \
            f"a card produced twice or not at all:\n{order_dump(services, oid, workers)}"
        assert {a.outcome for a in attempts} <= {"produced", "interrupted"}, \
            order_dump(services, oid, workers)
        interrupted = [a for a in attempts if a.outcome == "interrupted"]
        assert all(a.error and "interrupted" in a.error and a.spoiled_at for a in interrupted)
        audited = session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.order_id == oid, AuditEvent.action == "attempt interrupted"))
        assert audited == len(interrupted)
        assert {card.state for card in session.scalars(select(Card))} == {"unassigned"}
        valid = {ref: count for ref, count in session.execute(
            select(IssuedCertificate.attempt_ref, func.count()).where(IssuedCertificate.revoked_at.is_(None))
            .group_by(IssuedCertificate.attempt_ref))}
        issued = {ref: count for ref, count in session.execute(
            select(IssuedCertificate.attempt_ref, func.count()).group_by(IssuedCertificate.attempt_ref))}
    for attempt in interrupted:
        ref = attempt_ref(oid, attempt.card_id, attempt.attempt)
        assert ref not in valid, f"a spoiled card's certificate is valid: {ref}"
    # Every produced card has its certificates, as many as the options ask for, and none revoked.
    produced_refs = [attempt_ref(oid, a.card_id, a.attempt) for a in attempts if a.outcome == "produced"]
    expected = issued[produced_refs[0]]
    assert expected >= 1
    assert {(valid.get(ref, 0), issued.get(ref, 0)) for ref in produced_refs} == {(expected, expected)}
    return len(interrupted)


@pytest.mark.postgres
def test_a_worker_killed_at_20_random_points_of_a_200_card_order(crash_cluster):
    services, workers = crash_cluster
    rng, cards, kills = random.Random(SEED), 200, 0
    workers.start("victim", "survivor")
    instance_id, oid = _start_order(services, cards)
    while kills < 20:
        time.sleep(rng.uniform(0.05, 0.7))  # anywhere: mid-card, between cards, in an engine step
        workers.kill("victim")
        kills += 1
        workers.start("victim")
    assert settle(services, instance_id).bpmn_id == "Activity_Review", order_dump(services, oid, workers)
    interrupted_before_repeat = _assert_no_card_twice_so_far(services, oid, workers)
    _repeat_failed_until_all_produced(services, instance_id, oid, workers)
    interrupted = _assert_every_card_once_and_every_interruption_recorded(services, oid, cards, workers)
    assert interrupted == interrupted_before_repeat, order_dump(services, oid, workers)
    assert interrupted >= 5, f"seed {SEED}: only {interrupted} kills fell mid-card"


@pytest.mark.postgres
def test_the_worker_running_produce_cards_killed_before_the_step_was_saved(crash_cluster):
    """The step dispatched the batch and its worker died before the engine saved it: the step
    runs again on a restarted worker while cards of the batch are already at the stations.
    Review production opens only when every card has its outcome, and the next batch waits for
    its own cards (a kill -9 here once left 15 of 200 cards unproduced)."""
    services, workers = crash_cluster
    workers.start("victim", "survivor")
    for _try in range(3):  # the window is a few tens of ms: watched for, rarely missed
        first = _requested_cards(services, 40)
        instance_id, task = start(services)
        with unit_of_work(services.sessions) as session:
            count = orders.stage_selection(session, order_id(services, instance_id), card_ids=first)
        task = submit_and_settle(services, instance_id, task,
                                 {"action": "issue", "selection": {"selected": count}})
        oid = order_id(services, instance_id)
        complete(services, instance_id, task, {"action": "next"})
        if _kill_both_between_dispatch_and_save(services, workers, instance_id, oid):
            break
        settle(services, instance_id)  # missed: this order ends as usual, the next one tries again
    else:
        raise AssertionError("three orders in a row saved their step before the kill")
    workers.start("victim", "survivor")
    task = settle(services, instance_id)
    assert task.bpmn_id == "Activity_Review"
    with unit_of_work(services.sessions) as session:
        without_outcome = session.scalar(select(func.count()).select_from(OrderCard).where(
            OrderCard.order_id == oid, OrderCard.status.in_(("pending", "claimed"))))
    assert without_outcome == 0, f"Review opened with cards to come:\n{order_dump(services, oid, workers)}"
    _repeat_failed_until_all_produced(services, instance_id, oid, workers)
    with unit_of_work(services.sessions) as session:
        produced = sorted(session.scalars(select(ProductionAttempt.card_id).where(
            ProductionAttempt.order_id == oid, ProductionAttempt.outcome == "produced")))
    assert produced == first, order_dump(services, oid, workers)


def _requested_cards(services, cards: int) -> list[int]:
    """``cards`` new requested cards; their ids."""
    with unit_of_work(services.sessions) as session:
        after = session.scalar(select(func.max(Card.id))) or 0
    add_cards(services, cards)
    return list(range(after + 1, after + cards + 1))


def _kill_both_between_dispatch_and_save(services, workers: CrashWorkers, instance_id: str, oid: int) -> bool:
    """kill -9 both workers (whichever runs the step) once the batch is dispatched and before the
    engine saved "Produce cards"; False when the step was saved first."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with unit_of_work(services.sessions) as session:
            dispatched = session.get(Order, oid).dispatched_at
            waiting = session.get(Instance, instance_id).waiting_for
        if waiting is not None:
            return False
        if dispatched is not None:
            workers.kill("victim")
            workers.kill("survivor")
            with unit_of_work(services.sessions) as session:
                return session.get(Instance, instance_id).waiting_for is None
        time.sleep(0.005)
    raise AssertionError("Produce cards did not run")


def _assert_no_card_twice_so_far(services, oid: int, workers: CrashWorkers) -> int:
    with unit_of_work(services.sessions) as session:
        produced = list(session.scalars(select(ProductionAttempt.card_id).where(
            ProductionAttempt.order_id == oid, ProductionAttempt.outcome == "produced")))
        interrupted = session.scalar(select(func.count()).select_from(ProductionAttempt).where(
            ProductionAttempt.order_id == oid, ProductionAttempt.outcome == "interrupted"))
    assert len(produced) == len(set(produced)), order_dump(services, oid, workers)
    return interrupted


@pytest.mark.postgres
def test_a_worker_paused_past_its_claim_records_nothing_when_it_wakes(crash_cluster):
    services, workers = crash_cluster
    cards = 20
    workers.start("victim", "survivor")
    instance_id, oid = _start_order(services, cards)
    held = _wait_for_claim(services, oid, "victim@")
    workers.processes["victim"].send_signal(signal.SIGSTOP)  # paused mid-card: no renewals
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and _status(services, oid, held) != "failed":
            time.sleep(0.2)
        assert _status(services, oid, held) == "failed", "the survivor did not take the card over"
    finally:
        workers.processes["victim"].send_signal(signal.SIGCONT)
    assert settle(services, instance_id).bpmn_id == "Activity_Review"
    time.sleep(3)  # the woken worker finishes its card and tries to record it: refused
    _repeat_failed_until_all_produced(services, instance_id, oid, workers)
    assert _assert_every_card_once_and_every_interruption_recorded(services, oid, cards, workers) >= 1
    with unit_of_work(services.sessions) as session:
        first = session.scalar(select(ProductionAttempt).where(
            ProductionAttempt.order_id == oid, ProductionAttempt.card_id == held,
            ProductionAttempt.attempt == 1))
    assert first.outcome == "interrupted" and first.station == "victim"


def _wait_for_claim(services, oid: int, worker_prefix: str) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with unit_of_work(services.sessions) as session:
            card = session.scalar(select(OrderCard.card_id).where(
                OrderCard.order_id == oid, OrderCard.status == "claimed",
                OrderCard.claimed_by.startswith(worker_prefix)))
        if card is not None:
            return card
        time.sleep(0.02)
    raise AssertionError(f"no card claimed by {worker_prefix}")


def _status(services, oid: int, card_id: int) -> str:
    with unit_of_work(services.sessions) as session:
        return session.get(OrderCard, (oid, card_id)).status


def test_the_web_server_killed_mid_production_resumes_the_order_when_restarted(tmp_path):
    """The embedded default: `cardflow run` is the only host (in-process runner and station)."""
    settings = make_settings(tmp_path / "instance")
    start_services(settings).close()
    server = WebServer(settings, write_stations(tmp_path / "stations.toml", ["virtual"], device_seconds=0.05))
    # This test process only records what the console would (no runner of its own): the
    # server's sweeper runs every engine step, as it does for a step whose host died.
    from engine import bootstrap

    local = bootstrap.build_services(settings, sweep=False)
    console = Runtime(local.sessions, local.registry, lambda _instance_id: None)
    local.runtime = console
    server.start()
    try:
        cards = 60
        add_cards(local, cards)
        instance_id = console.start("TempCardsBoProcIssueMultiple", "op")
        task = _wait_task(console, instance_id, "Activity_SearchCards")
        with unit_of_work(local.sessions) as session:
            count = orders.stage_selection(session, order_id(local, instance_id),
                                           card_ids=list(range(1, cards + 1)))
        console.complete_task(instance_id, task.task_id,
                              {"action": "issue", "selection": {"selected": count}}, "op")
        task = _wait_task(console, instance_id, "Activity_SelectedCards")
        console.complete_task(instance_id, task.task_id, {"action": "next"}, "op")
        oid = order_id(local, instance_id)
        _wait_for_claim(local, oid, "virtual@")
        time.sleep(0.5)
        server.kill()
        server.start()
        task = _wait_task(console, instance_id, "Activity_Review", timeout=90)
        with unit_of_work(local.sessions) as session:
            produced = list(session.scalars(select(ProductionAttempt.card_id).where(
                ProductionAttempt.order_id == oid, ProductionAttempt.outcome == "produced")))
            left = session.scalar(select(func.count()).select_from(OrderCard).where(
                OrderCard.order_id == oid, OrderCard.status.in_(("pending", "claimed"))))
        assert len(produced) == len(set(produced)) and left == 0
        assert 0 < len(produced) <= cards
    finally:
        server.stop()
        local.close()


def _wait_task(runtime: Runtime, instance_id: str, bpmn_id: str, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view = runtime.view(instance_id)
        assert view.status != "error", view.error
        task = runtime.ready_task(instance_id)
        if task is not None and task.bpmn_id == bpmn_id:
            return task
        time.sleep(0.1)
    raise AssertionError(f"{bpmn_id} not reached; the order is {runtime.view(instance_id)}")


@pytest.mark.postgres
def test_a_broker_restart_that_lost_every_queued_job_loses_no_card(crash_cluster, tmp_path):
    """Redis here keeps nothing on disk: a restart empties its queues. The jobs are gone, the
    cards are not: a sweeper sees the pool's queue empty while cards wait, and sends their jobs
    again."""
    services, workers = crash_cluster
    # A station of another pool runs the engine steps; the order's pool has no station yet.
    workers.stations_file.write_text(workers.stations_file.read_text()
                                     + '[[station]]\nname = "spare"\npool = "spare"\n')
    workers.start("spare")
    cards = 12
    instance_id, oid = _start_order(services, cards)
    deadline = time.monotonic() + 10
    while services.runner.depth(pool_queue("default")) != cards and time.monotonic() < deadline:
        time.sleep(0.1)
    assert services.runner.depth(pool_queue("default")) == cards  # the jobs wait in Redis
    with Connection(REDIS_URL) as connection:
        broker_queue(pool_queue("default"), os.environ[QUEUE_PREFIX_ENV])(connection.channel()).purge()
    assert services.runner.depth(pool_queue("default")) == 0
    workers.start("survivor")
    assert settle(services, instance_id).bpmn_id == "Activity_Review"
    with unit_of_work(services.sessions) as session:
        produced = sorted(session.scalars(select(ProductionAttempt.card_id).where(
            ProductionAttempt.order_id == oid, ProductionAttempt.outcome == "produced")))
    assert produced == list(range(1, cards + 1))
