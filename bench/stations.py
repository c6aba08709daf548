"""Bench: one order of N cards produced by 1, 2 and 4 station workers, on Redis and on RabbitMQ,
on PostgreSQL, with a simulated device time of 200 ms a card.

Floor (issue 8): throughput scales at least 3.5x from 1 to 4 workers.
Each worker is a separate ``cardflow worker --station wN --concurrency 1`` process; the time is
from pressing Next (the cards are dispatched) to the order showing Review production. The
columns after the speed-up say where a card's time goes: its attempt from claim to outcome (the
device time plus encoding, printing and recording), the mean CPU a card cost the workers, and
how busy the machine's CPUs were meanwhile (every process, not only cardflow's);
"producing" is the speed-up from the first claim to the last outcome (the order's engine steps
before and after, about 0.45 s through the broker, left out).

Run from the project root: .venv/bin/python -m bench.stations [--cards 60] [--workers 1 2 4]
[--brokers redis rabbitmq] [--device-seconds 0.2]
(PostgreSQL: CARDFLOW_BENCH_POSTGRES_URL, default the local test database; brokers:
CARDFLOW_TEST_REDIS_URL and CARDFLOW_TEST_RABBITMQ_URL, default the local servers).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from sqlalchemy import select

from engine.celery_jobs import QUEUE_PREFIX_ENV
from engine.db import unit_of_work
from tasks.store import ProductionAttempt
from tests.conftest import make_settings, private_schema
from tests.integration.flow import add_cards, order_id, settle, start
from tests.integration.workers import (
    BROKERS,
    Workers,
    complete,
    delete_queues,
    issue,
    unique_prefix,
    web_services,
    write_stations,
)

POSTGRES_URL = os.environ.get("CARDFLOW_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
DEVICE_SECONDS = 0.2


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time the processes have used so far (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine so far (Linux /proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return sum(values) - values[3] - values[4], sum(values)  # idle and iowait are not busy


def run_once(broker: str, workers: int, cards: int, device_seconds: float = DEVICE_SECONDS) -> dict:
    """One order of ``cards`` cards on ``workers`` fresh worker processes; its measurements."""
    prefix = unique_prefix()
    os.environ[QUEUE_PREFIX_ENV] = prefix  # the web side's CeleryJobs reads it, as the workers do
    with tempfile.TemporaryDirectory() as folder, private_schema(POSTGRES_URL, "bench") as url:
        root = Path(folder)
        settings = make_settings(root / "instance", url)
        services = web_services(settings, BROKERS[broker])
        names = [f"w{number}" for number in range(1, workers + 1)]
        stations = write_stations(root / "stations.toml", names, device_seconds)
        hosts = Workers(settings, BROKERS[broker], prefix, stations, root / "logs")
        try:
            hosts.start(*names)
            add_cards(services, cards)
            instance_id, task = start(services, user="bench")
            task = issue(services, instance_id, task, cards)
            pids = [process.pid for process in hosts.processes.values()]
            cpu_before, machine_before = cpu_seconds(pids), machine_ticks()
            began = time.perf_counter()
            complete(services, instance_id, task, {"action": "next"})
            task = settle(services, instance_id)
            seconds = time.perf_counter() - began
            cpu, machine_after = cpu_seconds(pids) - cpu_before, machine_ticks()
            busy = (machine_after[0] - machine_before[0]) / max(1, machine_after[1] - machine_before[1])
            assert task.bpmn_id == "Activity_Review", task.bpmn_id
            with unit_of_work(services.sessions) as session:
                attempts = session.scalars(select(ProductionAttempt).where(
                    ProductionAttempt.order_id == order_id(services, instance_id))).all()
            produced = [a for a in attempts if a.outcome == "produced"]
            assert len(produced) == len(attempts) == cards, "a card was not produced exactly once"
            per_station = {name: sum(a.station == name for a in produced) for name in names}
            attempt_ms = 1000 * sum((a.finished_at - a.started_at).total_seconds() for a in produced) / cards
            window = (max(a.finished_at for a in produced)
                      - min(a.started_at for a in produced)).total_seconds()
        finally:
            hosts.stop()
            services.close()
            delete_queues(BROKERS[broker], prefix, ["default"])
    return {"seconds": seconds, "rate": cards / seconds, "window_rate": cards / window,
            "attempt_ms": attempt_ms, "cpu_ms": 1000 * cpu / cards, "busy": busy,
            "spread": "/".join(str(per_station[n]) for n in names)}


def main() -> None:
    """Print one table: brokers x worker counts, cards per second and speed-up vs 1 worker."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cards", type=int, default=60)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--device-seconds", type=float, default=DEVICE_SECONDS,
                        help="simulated device time a card (the floor is for 0.2)")
    parser.add_argument("--brokers", nargs="+", default=list(BROKERS), choices=list(BROKERS))
    args = parser.parse_args()
    rows = []
    for broker in args.brokers:
        base = window_base = None
        for count in args.workers:
            result = run_once(broker, count, args.cards, args.device_seconds)
            base, window_base = base or result["rate"], window_base or result["window_rate"]
            rows.append((broker, count, result, result["rate"] / base, result["window_rate"] / window_base))
    print(f"order of {args.cards} cards on PostgreSQL, "
          f"device time {args.device_seconds * 1000:.0f} ms a card, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(f"{'broker':9s} {'workers':>7s} {'seconds':>8s} {'cards/s':>8s} {'speed-up':>8s} "
          f"{'producing':>10s} {'attempt ms':>10s} {'CPU ms/card':>11s} {'machine CPU':>11s}  "
          "cards per station")
    for broker, count, result, ratio, window_ratio in rows:
        print(f"{broker:9s} {count:7d} {result['seconds']:8.2f} {result['rate']:8.2f} {ratio:7.2f}x "
              f"{window_ratio:9.2f}x {result['attempt_ms']:10.0f} {result['cpu_ms']:11.0f} "
              f"{result['busy']:11.0%}  {result['spread']}")
    print("floor: 3.5x from 1 to 4 workers (speed-up: Next to Review production; producing: first claim to "
          "last outcome, without the order's fixed engine steps)")


if __name__ == "__main__":
    main()
