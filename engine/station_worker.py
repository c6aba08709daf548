"""``cardflow worker --station NAME``: one production station's host on the broker.

The process produces its station's cards (the jobs of its pool's queue), runs engine steps of
any instance (``cardflow.engine``), and sweeps: every worker takes over what a dead host left
(lapsed claims, stalled instances, revocations, lost jobs) within seconds.
"""

from __future__ import annotations

import logging

from engine import bootstrap
from engine.celery_jobs import ENGINE_QUEUE, CeleryJobs, worker_app
from engine.config import Settings, StationSettings
from engine.sweeper import Sweeper
from tasks import production

log = logging.getLogger(__name__)

DEFAULT_BROKER = "redis://127.0.0.1:6379/0"


class WorkerConfigError(ValueError):
    """The worker cannot start as asked (unknown station, bad broker URL)."""


def station_settings(settings: Settings, name: str) -> StationSettings:
    """The configured station ``name``: one of the stations file, or the default station when
    no file is given."""
    if settings.stations:
        if name not in settings.stations:
            raise WorkerConfigError(f"unknown station {name!r}; the stations file lists: "
                                    f"{', '.join(sorted(settings.stations))}")
        return settings.stations[name]
    if name != settings.station.name:
        raise WorkerConfigError(f"unknown station {name!r}; without CARDFLOW_STATIONS_FILE the only "
                                f"station is {settings.station.name!r}")
    return settings.station


def run_worker(settings: Settings, station: str, concurrency: int = 1) -> int:
    """Serve ``station`` until SIGTERM or SIGINT (a warm shutdown: running cards finish);
    returns the exit code."""
    settings.station = station_settings(settings, station)
    settings.broker_url = settings.broker_url or DEFAULT_BROKER
    if not settings.broker_url.startswith(("redis://", "rediss://", "amqp://", "amqps://", "pyamqp://")):
        raise WorkerConfigError("CARDFLOW_BROKER_URL must be a redis://, rediss://, amqp:// or amqps:// URL")
    services = bootstrap.build_services(settings, in_process=False, sweep=False)
    try:
        jobs = services.runner
        if not isinstance(jobs, CeleryJobs):
            raise WorkerConfigError("a station worker needs a broker (CARDFLOW_BROKER_URL)")
        production.heartbeat(services.production)
        services.station.warm_up()
        resumed = bootstrap.resume_pending(services)
        # build_services left the sweeper unstarted and without the station's own work: this
        # one also beats the station's heartbeat.
        services.sweeper = Sweeper(bootstrap.sweeps(services.runtime, services.production, jobs,
                                                    station_host=True), settings.sweep_seconds)
        services.sweeper.start()
        app = worker_app(services, bootstrap.external_jobs(services.production))
        queues = [jobs.queue(production.pool_queue(settings.station.pool)), jobs.queue(ENGINE_QUEUE)]
        app.conf.task_queues = queues
        name = bootstrap.worker_id(settings.station.name)
        log.info("station %s (pool %s) working: %d thread(s), %d instance(s) resumed",
                 settings.station.name, settings.station.pool, concurrency, resumed,
                 extra={"station": settings.station.name})
        worker = app.Worker(
            hostname=name, pool_cls="threads", concurrency=concurrency,
            queues=[queue.name for queue in queues], loglevel="INFO", quiet=True,
            # No gossip, mingle or heartbeat events: stations coordinate through the database,
            # and mingle alone delays every start by about a second.
            without_gossip=True, without_mingle=True, without_heartbeat=True)
        worker.start()  # installs Celery's SIGTERM/SIGINT handlers: a warm shutdown
        return worker.exitcode or 0
    finally:
        services.close()
        log.info("station %s stopped", settings.station.name, extra={"station": settings.station.name})
