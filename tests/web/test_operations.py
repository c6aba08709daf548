"""Operations: /healthz, /metrics, and the admin's stations page with pause and resume."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, func, select, update

from engine.config import StationSettings
from engine.db import make_sessions, unit_of_work
from engine.store import AuditEvent
from tasks import production
from tasks.store import StationStatus, utcnow

BROKER_URL = os.environ.get("CARDFLOW_TEST_BROKER_URL", "redis://127.0.0.1:6379/0")
PAGE = "/admin/stations"


@pytest.fixture
def beating(services) -> str:
    """This host's station has reported once (the sweeper does it every few seconds)."""
    production.heartbeat(services.production)
    return services.station.name


@pytest.fixture
def admin(login):
    return login("boss", "admin")


def add_station(services, name: str, pool: str = "default", age: float | None = 0.0, **values) -> None:
    """A row of the stations table whose last heartbeat was ``age`` seconds ago (None: never)."""
    with unit_of_work(services.sessions) as session:
        fields = {"paused": False, "cards_produced": 0, "cards_failed": 0, **values}
        session.add(StationStatus(name=name, pool=pool, **fields,
                                  heartbeat_at=None if age is None else utcnow() - timedelta(seconds=age)))


def station_row(services, name: str) -> StationStatus | None:
    with unit_of_work(services.sessions) as session:
        return session.get(StationStatus, name)


def audit_events(services, action_like: str = "station %") -> list[tuple[str, str, dict]]:
    with unit_of_work(services.sessions) as session:
        return [(e.actor, e.action, e.detail) for e in session.scalars(
            select(AuditEvent).where(AuditEvent.action.like(action_like)).order_by(AuditEvent.id))]


def metric_samples(text: str) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) -> value, from the Prometheus text format."""
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


# -- /healthz ----------------------------------------------------------------------------------

def test_healthz_is_ok_on_a_fresh_app_without_a_login(app, beating):
    response = app.test_client().get("/healthz")
    assert response.status_code == 200 and response.is_json
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["database"] == {"ok": True, "error": None}
    assert body["broker"]["ok"] is None  # in-process: no broker
    (station,) = body["stations"]
    assert station["name"] == beating and station["pool"] == "default" and station["paused"] is False
    assert station["alive"] is True and 0 <= station["age_seconds"] < 5
    assert station["last_heartbeat"].startswith(str(utcnow().year))


def test_a_station_with_an_old_heartbeat_is_not_alive_and_health_is_degraded(app, services, beating):
    add_station(services, "desk-old", pool="east", age=600)
    # Alive means younger than 3 sweeps + 10 s: 16 s with the default 2 s sweep.
    add_station(services, "desk-15s", age=15)
    add_station(services, "desk-20s", age=20)
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "degraded" and body["database"]["ok"] is True
    stations = {station["name"]: station for station in body["stations"]}
    assert stations["desk-old"]["alive"] is False and stations["desk-old"]["pool"] == "east"
    assert 599 <= stations["desk-old"]["age_seconds"] < 700
    assert stations["desk-15s"]["alive"] is True and stations["desk-20s"]["alive"] is False
    assert stations[beating]["alive"] is True


def test_a_configured_station_that_never_reported_shows_no_heartbeat(app, services, beating):
    services.settings.stations["desk-new"] = StationSettings(name="desk-new", pool="west")
    body = app.test_client().get("/healthz").get_json()
    (station,) = [s for s in body["stations"] if s["name"] == "desk-new"]
    assert station == {"name": "desk-new", "pool": "west", "paused": False, "last_heartbeat": None,
                       "age_seconds": None, "alive": False}
    assert body["status"] == "degraded"


def test_healthz_is_503_when_the_database_is_gone(app, services, tmp_path):
    gone = tmp_path / "gone" / "nowhere" / "cardflow.db"
    real_db, real_sessions = services.db, services.sessions
    services.db = create_engine(f"sqlite:///{gone}")
    services.sessions = make_sessions(services.db)
    try:
        response = app.test_client().get("/healthz")
        metrics = app.test_client().get("/metrics")
    finally:
        services.db.dispose()
        services.db, services.sessions = real_db, real_sessions
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "down" and body["stations"] == []
    assert body["database"] == {"ok": False, "error": "the database did not answer (OperationalError)"}
    text = response.get_data(as_text=True)
    assert str(tmp_path) not in text and "SELECT" not in text and "sqlite" not in text.lower()
    # /metrics still answers, and says the database is not readable.
    assert metrics.status_code == 200
    assert metric_samples(metrics.get_data(as_text=True))[("cardflow_database_up", ())] == 0
    assert app.test_client().get("/healthz").status_code == 200  # back once the database is


def test_an_unreachable_broker_degrades_health_without_showing_its_url(app, services, beating):
    services.settings.broker_url = "redis://:s3cret-broker-pw@127.0.0.1:1/0"
    try:
        response = app.test_client().get("/healthz")
    finally:
        services.settings.broker_url = None
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "degraded" and body["broker"]["ok"] is False
    assert body["broker"]["error"].startswith("the broker did not answer")
    text = response.get_data(as_text=True)
    assert "s3cret" not in text and "127.0.0.1" not in text


def test_a_reachable_broker_is_ok(app, services, beating):
    services.settings.broker_url = BROKER_URL
    try:
        body = app.test_client().get("/healthz").get_json()
    finally:
        services.settings.broker_url = None
    assert body["broker"]["ok"] is True and body["status"] == "ok", body


# -- /metrics ----------------------------------------------------------------------------------

def test_metrics_show_the_cards_a_station_produced(app, services, beating, reviewing):
    with unit_of_work(services.sessions) as session:
        session.execute(update(StationStatus).where(StationStatus.name == beating).values(cards_failed=3))
    add_station(services, "desk-2", pool="east", age=30, paused=True, cards_produced=5)
    response = app.test_client().get("/metrics")  # no login
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    samples = metric_samples(response.get_data(as_text=True))
    station = (("station", beating),)
    assert samples[("cardflow_cards_produced_total", station)] == 2  # cards 10 and 11 of the order
    assert samples[("cardflow_cards_failed_total", station)] == 3
    assert samples[("cardflow_cards_produced_total", (("station", "desk-2"),))] == 5
    assert samples[("cardflow_station_paused", station)] == 0
    assert samples[("cardflow_station_paused", (("station", "desk-2"),))] == 1
    assert 0 <= samples[("cardflow_station_heartbeat_age_seconds", station)] < 10
    assert 29 <= samples[("cardflow_station_heartbeat_age_seconds", (("station", "desk-2"),))] < 60
    assert samples[("cardflow_queue_depth", (("queue", "cardflow.pool.default"),))] == 0
    assert samples[("cardflow_queue_depth", (("queue", "cardflow.pool.east"),))] == 0
    assert samples[("cardflow_orders_open", ())] == 1
    assert samples[("cardflow_database_up", ())] == 1
    # The engine steps of the order ran in this process and were timed.
    assert samples[("cardflow_step_seconds_count", ())] >= 3
    assert samples[("cardflow_step_seconds_sum", ())] > 0


def test_each_app_has_its_own_registry(services):
    from engine.web.app import create_app

    first, second = create_app(services=services), create_app(services=services)
    for app in (first, second):
        assert app.test_client().get("/metrics").status_code == 200
    # Wrapping the runtime again re-targets the one wrapper; it never times a step twice.
    untimed = services.runtime.advance._cardflow_untimed
    assert untimed.__self__ is services.runtime and not hasattr(untimed, "_cardflow_untimed")


# -- the stations page -------------------------------------------------------------------------

def test_the_stations_page_lists_every_station(admin, services, beating, reviewing):
    add_station(services, "desk-2", pool="east", age=None, cards_failed=1,
                last_error="The printer is out of ribbon.", last_error_at=utcnow() - timedelta(minutes=5))
    services.settings.stations["desk-3"] = StationSettings(name="desk-3", pool="west")
    page = admin.get(PAGE).get_data(as_text=True)
    assert "<h1>Stations</h1>" in page
    assert '<a href="/admin/stations" aria-current="page">Stations</a>' in page
    rows = page.split("<tr")[2:]
    names = [row.split("<strong>")[1].split("</strong>")[0] for row in rows]
    assert names == sorted(["desk-2", "desk-3", beating])
    mine, desk2, desk3 = (rows[names.index(name)] for name in (beating, "desk-2", "desk-3"))
    assert "pool default" in mine and "running" in mine and "not answering" not in mine
    assert " s ago" in mine
    assert '<td data-label="Produced" class="num">2</td>' in mine
    assert '<td data-label="Cards a minute" class="num">0.2</td>' in mine  # 2 cards in 10 minutes
    assert '<td data-label="Queue" class="num">0</td>' in mine
    assert ">Pause</button>" in mine
    assert "no heartbeat" in desk2 and "not answering" in desk2 and "pool east" in desk2
    assert "badge running" not in desk2  # a station that does not answer is not shown as running
    assert "The printer is out of ribbon." in desk2 and " UTC" in desk2
    assert '<td data-label="Failed" class="num">1</td>' in desk2
    assert "no heartbeat" in desk3 and "pool west" in desk3
    assert "Refresh" in page and 'http-equiv="refresh"' not in page


def test_the_admin_menu_links_the_stations_page(admin):
    page = admin.get("/admin/users").get_data(as_text=True)
    assert '<a href="/admin/stations">Stations</a>' in page


def test_pause_and_resume_a_station_audited(admin, services, beating):
    response = admin.post(f"{PAGE}/{beating}/pause", page=PAGE)
    assert response.status_code == 303 and response.headers["Location"].endswith(PAGE)
    assert station_row(services, beating).paused is True
    assert production.station_paused(services.production)  # the station's jobs now wait
    page = admin.get(PAGE).get_data(as_text=True)
    assert "is paused" in page and "badge paused" in page and ">Resume</button>" in page
    # Pausing again changes nothing and records nothing.
    admin.post(f"{PAGE}/{beating}/pause", page=PAGE)
    assert "already paused" in admin.get(PAGE).get_data(as_text=True)
    assert admin.post(f"{PAGE}/{beating}/resume", page=PAGE).status_code == 303
    assert station_row(services, beating).paused is False
    assert not production.station_paused(services.production)
    assert audit_events(services) == [("boss", "station paused", {"station": beating}),
                                      ("boss", "station resumed", {"station": beating})]


def test_a_configured_station_can_be_paused_before_its_worker_starts(admin, services):
    services.settings.stations["desk-3"] = StationSettings(name="desk-3", pool="west")
    assert admin.post(f"{PAGE}/desk-3/pause", page=PAGE).status_code == 303
    row = station_row(services, "desk-3")
    assert row.paused is True and row.pool == "west" and row.heartbeat_at is None


def test_an_unknown_station_is_404_and_changes_nothing(admin, services, beating):
    response = admin.post(f"{PAGE}/no-such-desk/pause", page=PAGE)
    assert response.status_code == 404
    assert "There is no station named no-such-desk; nothing was changed." in response.get_data(as_text=True)
    assert station_row(services, "no-such-desk") is None and audit_events(services) == []


@pytest.mark.parametrize("name", ["..%2Fx", "../x", "<script>alert(1)</script>", "x" * 500, "a b", ".hidden",
                                  "%00"])
def test_a_hostile_station_name_is_refused_and_changes_nothing(admin, services, beating, name):
    token = admin.token(PAGE)
    with unit_of_work(services.sessions) as session:
        before = session.scalar(select(func.count()).select_from(StationStatus))
    for action in ("pause", "resume"):
        response = admin.client.post(f"{PAGE}/{name}/{action}", data={"csrf_token": token})
        assert response.status_code == 404, (name, response.status_code)
        text = response.get_data(as_text=True)
        assert "<script>alert" not in text
    with unit_of_work(services.sessions) as session:
        assert session.scalar(select(func.count()).select_from(StationStatus)) == before
    assert audit_events(services) == [] and station_row(services, beating).paused is False


def test_pause_without_the_csrf_token_changes_nothing(admin, services, beating):
    response = admin.client.post(f"{PAGE}/{beating}/pause", data={})
    assert response.status_code == 400
    assert station_row(services, beating).paused is False and audit_events(services) == []


def test_only_an_admin_may_pause(login, services, beating):
    operator = login("op", "operator")
    token = operator.token("/batch-orders")
    response = operator.client.post(f"{PAGE}/{beating}/pause", data={"csrf_token": token})
    assert response.status_code == 403 and station_row(services, beating).paused is False
