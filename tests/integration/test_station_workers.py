"""Station workers on Celery: real ``cardflow worker`` processes on Redis and on RabbitMQ, on
SQLite and PostgreSQL, produce a whole order's cards, each exactly once, spread over stations.

Every test has a queue prefix of its own (``CARDFLOW_QUEUE_PREFIX``), so test runs sharing the
machine's brokers never consume each other's jobs; its queues are deleted afterwards.
``bench.stations`` drives the same helpers.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select, update

from engine import bootstrap
from engine.celery_jobs import QUEUE_PREFIX_ENV
from engine.db import unit_of_work
from engine.store import Instance
from tasks.store import Card, OrderCard, ProductionAttempt, StationStatus
from tests.conftest import make_settings
from tests.integration.flow import add_cards, order_id, settle, start
from tests.integration.workers import (
    BROKERS,
    CARDFLOW,
    REDIS_URL,
    Workers,
    complete,
    delete_queues,
    issue,
    submit_and_settle,
    unique_prefix,
    web_services,
    write_stations,
)


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
