"""Stations: every production station with its heartbeat, counters, pace, queue and last error;
an admin pauses a station (its worker finishes the card in hand and takes no new one) and
resumes it. Each pause and resume is audited.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import func, select

from engine.config import STATION_NAME
from engine.db import read_only, unit_of_work
from engine.store import AuditEvent
from engine.web.admin import admin_only, bp
from engine.web.context import services
from engine.web.health import alive_within, read_stations
from tasks.store import ProductionAttempt, StationStatus

# Cards a minute are counted over this window.
PACE_MINUTES = 10


@bp.route("/stations")
@admin_only
def stations():
    """Every station of the stations table and of the settings, by name."""
    now = datetime.now(UTC)
    views = read_stations(services(), now)
    with read_only(services().sessions) as session:
        since = now - timedelta(minutes=PACE_MINUTES)
        produced = dict(session.execute(
            select(ProductionAttempt.station, func.count()).where(
                ProductionAttempt.outcome == "produced", ProductionAttempt.finished_at >= since,
                ProductionAttempt.station.is_not(None))
            .group_by(ProductionAttempt.station)).all())
    pace = {view.name: produced.get(view.name, 0) / PACE_MINUTES for view in views}
    return render_template("admin/stations.html", stations=views, pace=pace, now=now,
                           pace_minutes=PACE_MINUTES, alive_seconds=alive_within(services()))


def _set_paused(name: str, paused: bool):
    """Pause or resume ``name``; a name that is no station's is refused and changes nothing."""
    if not STATION_NAME.fullmatch(name):
        abort(404, "A station is named with 1 to 64 letters, digits, '.', '_' or '-'; nothing was changed.")
    configured = services().settings.stations.get(name)
    with unit_of_work(services().sessions) as session:
        row = session.get(StationStatus, name, with_for_update=True)
        if row is None and configured is None:
            abort(404, f"There is no station named {name}; nothing was changed.")
        if bool(row is not None and row.paused) == paused:
            state = "paused" if paused else "running"
            flash(f"Station {name} was already {state}; nothing was changed.", "info")
            return redirect(url_for("admin.stations"), code=303)
        if row is None:  # configured, but no worker has run it yet: paused before it starts
            row = StationStatus(name=name, pool=configured.pool, cards_produced=0, cards_failed=0)
            session.add(row)
        row.paused = paused
        action = "station paused" if paused else "station resumed"
        session.add(AuditEvent(actor=current_user.name[:100], action=action, detail={"station": name}))
    flash(f"Station {name} is paused: it finishes the card in hand and takes no new one." if paused
          else f"Station {name} is running again.", "info")
    return redirect(url_for("admin.stations"), code=303)


@bp.route("/stations/<name>/pause", methods=("POST",))
@admin_only
def station_pause(name: str):
    """Stop the station taking new cards; the card in hand is finished."""
    return _set_paused(name, True)


@bp.route("/stations/<name>/resume", methods=("POST",))
@admin_only
def station_resume(name: str):
    """Let a paused station take cards again."""
    return _set_paused(name, False)
