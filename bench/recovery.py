"""Bench: how fast production recovers from kill -9 (issue 8). One command, one table.

1. A station worker: stations "victim" and "survivor" (separate `cardflow worker` processes,
   Redis, PostgreSQL) produce one order, 0.5 s of device time a card; the victim is killed -9
   mid-card, three times. Measured from the kill: the order's next card finished by another
   worker (floor: under 10 s), and the victim's card taken over (recorded as interrupted, its
   certificates revoked, the card back for Repeat production; at most the claim time, 6 s, plus
   one sweep, 2 s).
2. The web server (`cardflow run`, the embedded default: SQLite, in-process runner and station)
   killed -9 mid-production and started again. Measured from the restart: the server answering,
   the interrupted card taken over, and the order's next card finished.

Run from the project root: .venv/bin/python -m bench.recovery [--kills 3]
"""

from __future__ import annotations

import argparse
import os
import signal
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

from engine import bootstrap
from engine.celery_jobs import QUEUE_PREFIX_ENV
from engine.db import unit_of_work
from engine.runtime import Runtime
from tasks import orders
from tasks.store import OrderCard, ProductionAttempt
from tests.conftest import make_settings, private_schema, start_services
from tests.integration.flow import add_cards, order_id, start
from tests.integration.workers import (
    REDIS_URL,
    WebServer,
    Workers,
    complete,
    delete_queues,
    issue,
    unique_prefix,
    web_services,
    write_stations,
)

POSTGRES_URL = os.environ.get("CARDFLOW_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _until(condition, timeout: float = 60.0, step: float = 0.02) -> float:
    """Seconds until ``condition()`` holds (raises after ``timeout``)."""
    began = time.monotonic()
    while not condition():
        if time.monotonic() - began > timeout:
            raise TimeoutError("condition not reached")
        time.sleep(step)
    return time.monotonic() - began


def _claimed_by(sessions, oid: int, prefix: str) -> int | None:
    with unit_of_work(sessions) as session:
        return session.scalar(select(OrderCard.card_id).where(
            OrderCard.order_id == oid, OrderCard.status == "claimed",
            OrderCard.claimed_by.startswith(prefix)))


def _finished(sessions, oid: int) -> int:
    with unit_of_work(sessions) as session:
        return session.scalar(select(func.count()).select_from(ProductionAttempt).where(
            ProductionAttempt.order_id == oid, ProductionAttempt.outcome == "produced"))


def _status(sessions, oid: int, card_id: int) -> str:
    with unit_of_work(sessions) as session:
        return session.get(OrderCard, (oid, card_id)).status


def worker_kills(folder: Path, kills: int) -> list[tuple[float, float]]:
    """(kill -> next card finished elsewhere, kill -> victim's card taken over) per kill."""
    with private_schema(POSTGRES_URL, "bench") as url:
        return _kill_victim(make_settings(folder / "instance", url), folder, kills)


def _kill_victim(settings, folder: Path, kills: int) -> list[tuple[float, float]]:
    prefix = unique_prefix()
    os.environ[QUEUE_PREFIX_ENV] = prefix
    services = web_services(settings, REDIS_URL)
    stations = write_stations(folder / "stations.toml", ["victim", "survivor"], device_seconds=0.5)
    workers = Workers(settings, REDIS_URL, prefix, stations, folder / "logs")
    results = []
    try:
        workers.start("victim", "survivor")
        cards = 20 * kills + 20
        add_cards(services, cards)
        instance_id, task = start(services)
        task = issue(services, instance_id, task, cards)
        complete(services, instance_id, task, {"action": "next"})
        oid = order_id(services, instance_id)
        for _kill in range(kills):
            _until(lambda: _claimed_by(services.sessions, oid, "victim@") is not None)
            card = _claimed_by(services.sessions, oid, "victim@")
            time.sleep(0.2)  # mid-card
            done_before = _finished(services.sessions, oid)
            process = workers.processes.pop("victim")
            process.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            process.wait()
            _until(lambda before=done_before: _finished(services.sessions, oid) > before)
            next_card = time.monotonic() - killed
            _until(lambda held=card: _status(services.sessions, oid, held) == "failed")
            results.append((next_card, time.monotonic() - killed))
            workers.start("victim")
    finally:
        workers.stop()
        services.close()
        delete_queues(REDIS_URL, prefix, ["default"])
    return results


def web_server_restart(folder: Path) -> tuple[float, float, float]:
    """(restart -> answering, restart -> interrupted card taken over, restart -> next card)."""
    settings = make_settings(folder / "web" / "instance")
    start_services(settings).close()
    server = WebServer(settings, write_stations(folder / "web-stations.toml", ["virtual"], 0.3))
    local = bootstrap.build_services(settings, sweep=False)
    console = Runtime(local.sessions, local.registry, lambda _instance_id: None)
    server.start()
    try:
        add_cards(local, 40)
        instance_id = console.start("TempCardsBoProcIssueMultiple", "bench")
        _until(lambda: console.ready_task(instance_id) is not None, 30)
        with unit_of_work(local.sessions) as session:
            count = orders.stage_selection(session, order_id(local, instance_id), card_ids=list(range(1, 41)))
        console.complete_task(instance_id, console.ready_task(instance_id).task_id,
                              {"action": "issue", "selection": {"selected": count}}, "bench")
        _until(lambda: (task := console.ready_task(instance_id)) is not None
               and task.bpmn_id == "Activity_SelectedCards", 30)
        console.complete_task(instance_id, console.ready_task(instance_id).task_id, {"action": "next"},
                              "bench")
        oid = order_id(local, instance_id)
        _until(lambda: _finished(local.sessions, oid) >= 3, 60)
        card = _claimed_by(local.sessions, oid, "virtual@")
        server.kill()
        done_before = _finished(local.sessions, oid)
        restarted = time.monotonic()
        up = server.start()
        _until(lambda: card is None or _status(local.sessions, oid, card) == "failed", 60)
        taken_over = time.monotonic() - restarted
        _until(lambda: _finished(local.sessions, oid) > done_before, 60)
        return up, taken_over, time.monotonic() - restarted
    finally:
        server.stop()
        local.close()


def main() -> None:
    """Run both scenarios and print one table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kills", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        kills = worker_kills(Path(folder) / "workers", args.kills)
        up, taken_over, next_card = web_server_restart(Path(folder))
    print("recovery after kill -9 (seconds)")
    print(f"{'what':58s} {'seconds':>8s}")
    for number, (gap, takeover) in enumerate(kills, start=1):
        what = f"worker kill {number}: order produces its next card elsewhere"
        print(f"{what:58s} {gap:8.2f}   floor 10 s")
        print(f"{f'worker kill {number}: its card taken over (interrupted)':58s} {takeover:8.2f}")
    print(f"{'web server restart: answering':58s} {up:8.2f}")
    print(f"{'web server restart: interrupted card taken over':58s} {taken_over:8.2f}")
    print(f"{'web server restart: order produces its next card':58s} {next_card:8.2f}")


if __name__ == "__main__":
    main()
