"""Prometheus metrics: what the database says at scrape time, and the engine's step latency.

Station workers are separate processes, so their counters are not kept in memory here: the
collector reads them from the database when Prometheus scrapes (``read`` gives a ``Snapshot``),
and every process's work shows at one ``/metrics``. The step latency is measured where the
engine runs: ``instrument_runtime`` wraps ``Runtime.advance`` of this process (the in-process
host; a Celery worker that advances instances would expose its own).

Each app gets its own ``CollectorRegistry``: nothing is registered on the global default one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_UNTIMED = "_cardflow_untimed"


@dataclass
class StationSample:
    """One station as the stations table has it."""

    name: str
    cards_produced: int
    cards_failed: int
    heartbeat_age: float | None  # seconds; None: never beat
    paused: bool


@dataclass
class Snapshot:
    """What the database and the job host say at one scrape."""

    stations: list[StationSample] = field(default_factory=list)
    queue_depths: dict[str, int] = field(default_factory=dict)  # queue name -> jobs waiting
    orders_open: int = 0


class ScrapeCollector(Collector):
    """Reads a ``Snapshot`` at every scrape; a failed read reports ``cardflow_database_up 0``."""

    def __init__(self, read: Callable[[], Snapshot]):
        self.read = read

    def describe(self) -> Iterable[Metric]:
        return []  # registering must not read the database

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily("cardflow_database_up", "1 when the metrics could be read from the database.")
        try:
            snapshot = self.read()
        except Exception as error:
            log.warning("metrics: reading the database failed (%s)", type(error).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        produced = CounterMetricFamily("cardflow_cards_produced", "Cards a station produced.",
                                       labels=["station"])
        failed = CounterMetricFamily("cardflow_cards_failed", "Card attempts that failed at a station.",
                                     labels=["station"])
        age = GaugeMetricFamily("cardflow_station_heartbeat_age_seconds",
                                "Seconds since the station's worker last reported.", labels=["station"])
        paused = GaugeMetricFamily("cardflow_station_paused", "1 while an admin has paused the station.",
                                   labels=["station"])
        for station in snapshot.stations:
            produced.add_metric([station.name], station.cards_produced)
            failed.add_metric([station.name], station.cards_failed)
            paused.add_metric([station.name], 1 if station.paused else 0)
            if station.heartbeat_age is not None:
                age.add_metric([station.name], station.heartbeat_age)
        depth = GaugeMetricFamily("cardflow_queue_depth", "Card jobs waiting in a station pool's queue.",
                                  labels=["queue"])
        for queue, waiting in sorted(snapshot.queue_depths.items()):
            depth.add_metric([queue], waiting)
        orders = GaugeMetricFamily("cardflow_orders_open", "Orders not completed or cancelled yet.")
        orders.add_metric([], snapshot.orders_open)
        yield from (produced, failed, age, paused, depth, orders)


def new_registry(read: Callable[[], Snapshot]) -> tuple[CollectorRegistry, Histogram]:
    """A registry of its own with the scrape-time collector and the step latency histogram."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ScrapeCollector(read))
    steps = Histogram("cardflow_step_seconds",
                      "Time one advance of an instance took (its ready engine steps), in this process.",
                      registry=registry, buckets=STEP_BUCKETS)
    return registry, steps


def instrument_runtime(runtime, histogram: Histogram) -> None:
    """Time every ``runtime.advance`` into ``histogram`` (wraps the bound method; calling it
    again re-targets the one wrapper, it never times twice)."""
    original = getattr(runtime.advance, _UNTIMED, runtime.advance)

    def advance(instance_id: str):
        started = time.perf_counter()
        try:
            return original(instance_id)
        finally:
            histogram.observe(time.perf_counter() - started)

    setattr(advance, _UNTIMED, original)
    advance.__doc__ = original.__doc__
    runtime.advance = advance
