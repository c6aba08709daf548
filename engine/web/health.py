"""Probes for machines: ``/healthz`` (is it up, what is not) and ``/metrics`` (Prometheus).

Neither needs a login: a load balancer and Prometheus call them. They say nothing secret (no
SQL, no paths, no broker URL; errors are one short line). Operators who do not want
``/metrics`` public restrict it at the reverse proxy, as they do for the console itself.

``read_stations`` is also what the admin stations page shows.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import Blueprint, Response, current_app, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.bootstrap import Services
from engine.db import read_only
from engine.metrics import Snapshot, StationSample
from engine.web.context import services
from tasks.production import pool_queue
from tasks.store import Order, StationStatus

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)
METRICS_KEY = "cardflow_metrics"
BROKER_TIMEOUT = 2.0


@dataclass
class StationView:
    """A station as the stations table and the settings know it, with its pool's queue."""

    name: str
    pool: str
    paused: bool
    heartbeat_at: datetime | None
    age_seconds: float | None  # since the last heartbeat; None: never
    alive: bool
    cards_produced: int
    cards_failed: int
    last_error: str | None
    last_error_at: datetime | None
    queue_depth: int | None  # None: the job host cannot tell
    known: bool  # a row in the stations table (a worker has run it at least once)


def alive_within(services: Services) -> float:
    """A station is alive while its last heartbeat is younger than this (seconds)."""
    return 3 * services.settings.sweep_seconds + 10


def _aware(moment: datetime | None) -> datetime | None:
    """SQLite gives naive datetimes back; they were stored in UTC."""
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def queue_depth(services: Services, pool: str) -> int | None:
    """Jobs waiting in the pool's queue, None when the job host cannot tell (or fails to)."""
    try:
        return services.runner.depth(pool_queue(pool))
    except Exception as error:
        log.warning("queue depth of pool %s unknown (%s)", pool, type(error).__name__)
        return None


def read_stations(services: Services, now: datetime | None = None) -> list[StationView]:
    """Every station of the stations table and of ``settings.stations``, by name.

    The queues are asked after the transaction ends: a slow broker never holds a database lock.
    """
    now = now or datetime.now(UTC)
    # Read only: health checks and scrapes never wait for, or hold, the write lock.
    with read_only(services.sessions) as session:
        views = _station_views(services, session, now)
    depths: dict[str, int | None] = {}
    for view in views:
        if view.pool not in depths:
            depths[view.pool] = queue_depth(services, view.pool)
        view.queue_depth = depths[view.pool]
    return views


def _station_views(services: Services, session: Session, now: datetime) -> list[StationView]:
    limit = alive_within(services)
    views: dict[str, StationView] = {}
    for row in session.scalars(select(StationStatus)):
        beat = _aware(row.heartbeat_at)
        age = max(0.0, (now - beat).total_seconds()) if beat is not None else None
        views[row.name] = StationView(
            row.name, row.pool, bool(row.paused), beat, age, age is not None and age < limit,
            row.cards_produced or 0, row.cards_failed or 0, row.last_error, _aware(row.last_error_at),
            queue_depth=None, known=True)
    for name, configured in services.settings.stations.items():
        if name not in views:
            views[name] = StationView(name, configured.pool, False, None, None, False, 0, 0, None, None,
                                      queue_depth=None, known=False)
    return [views[name] for name in sorted(views)]


# -- /healthz ----------------------------------------------------------------------------------

def _database_check(services: Services) -> dict:
    """``SELECT 1`` on a pooled connection, outside any transaction (no write lock waited for)."""
    try:
        connection = services.db.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute("SELECT 1")
            cursor.fetchall()
            cursor.close()
        finally:
            connection.close()
    except Exception as error:
        log.warning("healthz: the database did not answer: %s", error)
        return {"ok": False, "error": f"the database did not answer ({type(error).__name__})"}
    return {"ok": True, "error": None}


def _broker_check(url: str | None) -> dict:
    """A short connection to the broker; ``ok`` None when work runs in this process (no broker)."""
    if not url:
        return {"ok": None, "error": None, "mode": "in-process"}
    outcome: dict = {"ok": False, "error": f"the broker did not answer within {BROKER_TIMEOUT:.0f} s",
                     "mode": "broker"}

    def connect() -> None:
        from kombu import Connection

        try:
            with Connection(url, connect_timeout=BROKER_TIMEOUT) as connection:
                connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0.2,
                                             timeout=BROKER_TIMEOUT)
            outcome.update(ok=True, error=None)
        except Exception as error:  # the URL may hold a password: only the kind of failure is said
            log.warning("healthz: the broker did not answer (%s)", type(error).__name__)
            outcome["error"] = f"the broker did not answer ({type(error).__name__})"

    thread = threading.Thread(target=connect, name="healthz-broker", daemon=True)
    thread.start()
    thread.join(BROKER_TIMEOUT + 1)
    return dict(outcome)


@bp.route("/healthz")
def healthz():
    """ok: all is well; degraded: the broker or a station is not answering (200); down: the
    database is not answering (503)."""
    services_ = services()
    database = _database_check(services_)
    broker = _broker_check(services_.settings.broker_url)
    stations: list[dict] = []
    if database["ok"]:
        try:
            views = read_stations(services_)
        except Exception as error:
            log.warning("healthz: reading the stations failed: %s", error)
            database = {"ok": False, "error": f"the database did not answer ({type(error).__name__})"}
            views = []
        stations = [{"name": view.name, "pool": view.pool, "paused": view.paused,
                     "last_heartbeat": view.heartbeat_at.isoformat() if view.heartbeat_at else None,
                     "age_seconds": round(view.age_seconds, 1) if view.age_seconds is not None else None,
                     "alive": view.alive} for view in views]
    if not database["ok"]:
        status = "down"
    elif broker["ok"] is False or not all(station["alive"] for station in stations):
        status = "degraded"
    else:
        status = "ok"
    body = {"status": status, "database": database, "broker": broker, "stations": stations}
    response = jsonify(body)
    response.status_code = 503 if status == "down" else 200
    response.headers["Cache-Control"] = "no-store"
    return response


# -- /metrics ----------------------------------------------------------------------------------

def metrics_snapshot(services: Services) -> Snapshot:
    """The stations table, the pools' queues and the open orders, read at scrape time."""
    views = read_stations(services)
    with read_only(services.sessions) as session:
        orders_open = session.scalar(
            select(func.count()).select_from(Order).where(Order.status == "open")) or 0
    depths = {pool_queue(view.pool): view.queue_depth for view in views if view.queue_depth is not None}
    own = services.settings.station.pool  # this host's pool, before its first heartbeat too
    if pool_queue(own) not in depths and (depth := queue_depth(services, own)) is not None:
        depths[pool_queue(own)] = depth
    return Snapshot(
        stations=[StationSample(view.name, view.cards_produced, view.cards_failed, view.age_seconds,
                                view.paused) for view in views if view.known],
        queue_depths=depths, orders_open=orders_open)


@bp.route("/metrics")
def metrics():
    """Prometheus text format. No login: restrict it at the reverse proxy if it must not be public."""
    body = generate_latest(current_app.extensions[METRICS_KEY])
    return Response(body, mimetype=None, headers={"Content-Type": CONTENT_TYPE_LATEST,
                                                  "Cache-Control": "no-store"})
