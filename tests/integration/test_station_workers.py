"""Station workers on Celery: real ``cardflow worker`` processes on Redis and on RabbitMQ, on
SQLite and PostgreSQL, produce a whole order's cards, each exactly once, spread over stations.

Every test has a queue prefix of its own (``CARDFLOW_QUEUE_PREFIX``), so test runs sharing the
machine's brokers never consume each other's jobs; its queues are deleted afterwards.
``bench.stations`` drives the same helpers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kombu import Connection
from sqlalchemy import select, update

from engine import bootstrap
from engine.celery_jobs import ENGINE_QUEUE, QUEUE_PREFIX_ENV, broker_queue
from engine.config import Settings
from engine.db import unit_of_work
from engine.leases import InstanceBusy
from engine.store import Instance
from tasks import orders
from tasks.production import pool_queue
from tasks.store import Card, OrderCard, ProductionAttempt, StationStatus
from tests.conftest import make_settings, start_services
from tests.integration.flow import add_cards, order_id, settle, start

REDIS_URL = os.environ.get("CARDFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RABBITMQ_URL = os.environ.get("CARDFLOW_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")
BROKERS = {"redis": REDIS_URL, "rabbitmq": RABBITMQ_URL}
CARDFLOW = Path(sys.executable).with_name("cardflow")
READY_SECONDS = 30.0


def write_stations(path: Path, names: list[str], device_seconds: float, pool: str = "default") -> Path:
    """A stations file: ``names`` in one pool, each taking ``device_seconds`` a card."""
    path.write_text("".join(f'[[station]]\nname = "{name}"\npool = "{pool}"\n'
                            f"device_seconds = {device_seconds}\n\n" for name in names))
    return path


class Workers:
    """``cardflow worker`` processes on one instance folder, database and broker."""

    def __init__(self, settings: Settings, broker_url: str, prefix: str, stations_file: Path, logs: Path):
        self.settings, self.broker_url, self.prefix = settings, broker_url, prefix
        self.stations_file, self.logs = stations_file, logs
        self.processes: dict[str, subprocess.Popen] = {}

    def env(self) -> dict[str, str]:
        """What a worker is configured with: the web side's settings, the broker, the stations."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("CARDFLOW_")}
        env.update(CARDFLOW_DATABASE_URL=self.settings.database_url,
                   CARDFLOW_INSTANCE_PATH=str(self.settings.instance_path),
                   CARDFLOW_CA_PASSPHRASE=self.settings.ca_passphrase,
                   CARDFLOW_SECRET_KEY=self.settings.secret_key,
                   CARDFLOW_ORGANISATION=self.settings.organisation,
                   CARDFLOW_BROKER_URL=self.broker_url, CARDFLOW_STATIONS_FILE=str(self.stations_file),
                   **{QUEUE_PREFIX_ENV: self.prefix})
        return env

    def start(self, *stations: str, concurrency: int = 1) -> None:
        """Start one worker per station and wait until each consumes its queues."""
        self.logs.mkdir(parents=True, exist_ok=True)
        for station in stations:
            log = (self.logs / f"{station}.log").open("wb")
            self.processes[station] = subprocess.Popen(
                [str(CARDFLOW), "worker", "--station", station, "--concurrency", str(concurrency)],
                env=self.env(), stdout=log, stderr=subprocess.STDOUT)
            log.close()
        deadline = time.monotonic() + READY_SECONDS
        for station in stations:
            while b" ready." not in self.log(station):
                if self.processes[station].poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"worker {station} did not start:\n{self.log(station).decode()}")
                time.sleep(0.05)

    def log(self, station: str) -> bytes:
        """What the station's worker wrote (stdout and stderr)."""
        path = self.logs / f"{station}.log"
        return path.read_bytes() if path.exists() else b""

    def stop(self) -> None:
        """SIGTERM every worker (a warm shutdown) and wait for it; SIGKILL a worker that hangs."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for station, process in self.processes.items():
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                log = self.log(station).decode()
                raise AssertionError(f"worker {station} ignored SIGTERM:\n{log}") from None
        self.processes.clear()


def delete_queues(broker_url: str, prefix: str, pools: list[str]) -> None:
    """Remove the test's queues (and their exchanges) from the broker."""
    with Connection(broker_url, connect_timeout=5) as connection:
        for name in (ENGINE_QUEUE, *(pool_queue(pool) for pool in pools)):
            queue = broker_queue(name, prefix).name
            for drop in ("queue_delete", "exchange_delete"):
                try:  # a fresh channel each: AMQP closes one on a missing queue or exchange
                    getattr(connection.channel(), drop)(queue)
                except connection.channel_errors:
                    pass


def web_services(settings: Settings, broker_url: str) -> bootstrap.Services:
    """The web side: initialised and deployed as the console has it, then wired to the broker
    (the runtime enqueues engine steps and card jobs to Celery)."""
    start_services(settings).close()
    settings.broker_url = broker_url
    services = bootstrap.build_services(settings)
    assert type(services.runner).__name__ == "CeleryJobs"
    return services


def unique_prefix() -> str:
    """A queue prefix no other test run uses."""
    return f"t{os.getpid()}-{os.urandom(4).hex()}"


@pytest.fixture
def cluster(request, tmp_path, monkeypatch) -> Iterator[tuple[bootstrap.Services, Workers]]:
    """Web services and (not started) workers s1, s2 for ``request.param`` = (broker, database)."""
    broker, database = request.param
    url = request.getfixturevalue("postgres_url") if database == "postgres" else None
    settings = make_settings(tmp_path / "instance", url)
    prefix = unique_prefix()
    # The in-process web side reads its prefix where the workers do: the environment.
    monkeypatch.setenv(QUEUE_PREFIX_ENV, prefix)
    services = web_services(settings, BROKERS[broker])
    stations = write_stations(tmp_path / "stations.toml", ["s1", "s2"], device_seconds=0.05)
    workers = Workers(settings, BROKERS[broker], prefix, stations, tmp_path / "logs")
    try:
        yield services, workers
    finally:
        workers.stop()
        services.close()
        delete_queues(BROKERS[broker], prefix, ["default"])


ALL = [pytest.param(("redis", "postgres"), marks=pytest.mark.postgres, id="redis-postgres"),
       pytest.param(("rabbitmq", "postgres"), marks=pytest.mark.postgres, id="rabbitmq-postgres"),
       pytest.param(("redis", "sqlite"), id="redis-sqlite"),
       pytest.param(("rabbitmq", "sqlite"), id="rabbitmq-sqlite")]


def _attempts(services: bootstrap.Services, oid: int) -> list[ProductionAttempt]:
    with unit_of_work(services.sessions) as session:
        return list(session.scalars(select(ProductionAttempt).where(ProductionAttempt.order_id == oid)
                                    .order_by(ProductionAttempt.card_id, ProductionAttempt.attempt)))


@pytest.mark.parametrize("cluster", ALL, indirect=True)
def test_two_workers_produce_every_card_once_spread_over_both_stations(cluster):
    services, workers = cluster
    cards = 16
    workers.start("s1", "s2")
    add_cards(services, cards)
    instance_id, task = start(services)
    assert task.bpmn_id == "Activity_SearchCards"
    task = issue(services, instance_id, task, cards)
    assert task.bpmn_id == "Activity_SelectedCards"
    complete(services, instance_id, task, {"action": "next"})

    task = settle(services, instance_id)
    assert task.bpmn_id == "Activity_Review"
    oid = order_id(services, instance_id)
    attempts = _attempts(services, oid)
    assert [(a.card_id, a.attempt, a.outcome) for a in attempts] == [
        (card, 1, "produced") for card in range(1, cards + 1)]
    by_station = {station: sum(a.station == station for a in attempts) for station in ("s1", "s2")}
    assert by_station["s1"] > 0 and by_station["s2"] > 0, by_station
    assert sum(by_station.values()) == cards
    with unit_of_work(services.sessions) as session:
        assert {c.state for c in session.scalars(select(Card))} == {"unassigned"}
        assert {item.status for item in session.scalars(select(OrderCard))} == {"produced"}
        counted = {row.name: row.cards_produced for row in session.scalars(select(StationStatus))}
    assert counted == by_station

    # The operator completes the order: the engine step runs on a worker too.
    assert submit_and_settle(services, instance_id, task, {"action": "complete", "confirm_ok": True}) is None
    assert services.runtime.view(instance_id).status == "completed"


def complete(services: bootstrap.Services, instance_id: str, task, data: dict) -> None:
    """Complete a user task as the console does. The instance shows its user task (saved by a
    worker's engine step) a moment before that worker releases its lease: a person never
    notices, a test does, so it tries again as a person would (see the report on issue 8)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            services.runtime.complete_task(instance_id, task.task_id, data, "op")
            return
        except InstanceBusy:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def issue(services: bootstrap.Services, instance_id: str, task, cards: int):
    """Tick cards 1..``cards`` and press Issue multiple temporary cards; returns the next task."""
    with unit_of_work(services.sessions) as session:
        count = orders.stage_selection(session, order_id(services, instance_id),
                                       card_ids=list(range(1, cards + 1)))
    return submit_and_settle(services, instance_id, task,
                             {"action": "issue", "selection": {"selected": count}})


def submit_and_settle(services, instance_id, task, data):
    """Complete ``task`` and wait for the next user task (None when the instance ended)."""
    complete(services, instance_id, task, data)
    return settle(services, instance_id)


@pytest.mark.parametrize("cluster", [ALL[1], ALL[2]], indirect=True)
def test_a_paused_station_produces_nothing_and_resumes_when_unpaused(cluster):
    services, workers = cluster
    cards = 10
    workers.start("s1", "s2")
    with unit_of_work(services.sessions) as session:
        session.execute(update(StationStatus).values(paused=True))
    add_cards(services, cards)
    instance_id, task = start(services)
    task = issue(services, instance_id, task, cards)
    complete(services, instance_id, task, {"action": "next"})
    oid = order_id(services, instance_id)

    time.sleep(4)  # the stations received the jobs and deferred them
    assert _attempts(services, oid) == []
    with unit_of_work(services.sessions) as session:
        assert session.get(Instance, instance_id).waiting_for == "message"
        assert {item.status for item in session.scalars(select(OrderCard))} == {"pending"}

    began = time.monotonic()
    with unit_of_work(services.sessions) as session:
        session.execute(update(StationStatus).values(paused=False))
    assert settle(services, instance_id).bpmn_id == "Activity_Review"
    assert time.monotonic() - began < 30
    attempts = _attempts(services, oid)
    assert [(a.card_id, a.attempt, a.outcome) for a in attempts] == [
        (card, 1, "produced") for card in range(1, cards + 1)]


def test_an_unknown_station_is_refused_naming_the_known_ones(tmp_path):
    stations = write_stations(tmp_path / "stations.toml", ["s1", "s2"], device_seconds=0.0)
    settings = make_settings(tmp_path / "instance")
    workers = Workers(settings, REDIS_URL, unique_prefix(), stations, tmp_path / "logs")
    done = subprocess.run([str(CARDFLOW), "worker", "--station", "s3"], env=workers.env(),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "unknown station 's3'" in done.stderr and "s1, s2" in done.stderr
