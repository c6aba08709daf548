"""Fixtures for the console tests: the app on the deployed test services, a client per role.

CSRF protection stays on: every post carries the token parsed from the page, as a browser does.
Every console test runs on SQLite and on PostgreSQL, as the integration tests do; the browser
tests on SQLite only.
"""

from __future__ import annotations

import html
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from playwright import sync_api
from werkzeug.datastructures import MultiDict
from werkzeug.serving import make_server

from engine.db import unit_of_work
from engine.web.app import create_app
from tasks.demo import add_requested_cards
from tests.conftest import make_settings
from tests.web.console_steps import issue, title

PASSWORD = "correct-horse-battery"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
TASK_FORM = re.compile(r'<form method="post" action="([^"]+/tasks/[^"]+)" class="task-form">')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request, tmp_path):
    """A fresh instance on SQLite, then on the CI PostgreSQL server (a schema of its own)."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    return make_settings(tmp_path / "instance", url)


def pytest_collection_modifyitems(config, items):
    """The browser tests run on SQLite only: what they add over the console tests is the page's
    own scripts, which do not depend on the database, and twice they would double the run."""
    here = Path(__file__).parent
    twice = [item for item in items if item.get_closest_marker("browser") and here in item.path.parents
             and getattr(item, "callspec", None) and item.callspec.params.get("settings") == "postgres"]
    if twice:
        config.hook.pytest_deselected(items=twice)
        items[:] = [item for item in items if item not in twice]


@pytest.fixture
def app(services) -> Flask:
    """The console on the test services."""
    app = create_app(services=services)
    app.config["TESTING"] = True
    return app


@dataclass
class Console:
    """A logged-in browser stand-in: gets pages, posts forms with the page's CSRF token."""

    client: FlaskClient
    services: object

    def get(self, url: str, **kwargs):
        """GET a page."""
        return self.client.get(url, **kwargs)

    def token(self, url: str) -> str:
        """The CSRF token of the form on ``url``."""
        return csrf_token(self.client.get(url).get_data(as_text=True))

    def post(self, url: str, data: dict | None = None, page: str | None = None, **kwargs):
        """POST ``data`` plus the CSRF token read from ``page`` (the page the form is on)."""
        fields = dict(data or {})
        fields.setdefault("csrf_token", self.token(page or url))
        return self.client.post(url, data=fields, **kwargs)

    def start(self) -> str:
        """Press "Issue multiple temporary cards" on BATCH ORDERS; the new order's instance id."""
        response = self.post("/batch-orders/start/TempCardsBoProcIssueMultiple", page="/batch-orders")
        assert response.status_code == 303, response.get_data(as_text=True)
        return response.headers["Location"].rsplit("/", 1)[-1]

    def order_page(self, instance_id: str, **args) -> str:
        """The order page once the engine is idle (the browser test checks the page's own polling)."""
        assert self.services.runner.wait(instance_id, timeout=120)
        query = f"?{urlencode(args)}" if args else ""
        response = self.client.get(f"/orders/{instance_id}{query}")
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_data(as_text=True)

    def submit(self, instance_id: str, data: dict | list, args: dict | None = None, csrf: bool = True):
        """Post the current step's form (as drawn for ``args``) with ``data`` (a dict or pairs)."""
        page = self.order_page(instance_id, **(args or {}))
        match = TASK_FORM.search(page)
        assert match, f"the order page shows no task form:\n{page}"
        pairs = list(data.items()) if isinstance(data, dict) else list(data)
        if csrf:
            pairs.append(("csrf_token", csrf_token(page)))
        return self.client.post(html.unescape(match.group(1)), data=MultiDict(pairs))


def csrf_token(page: str) -> str:
    """The CSRF token in a page's form."""
    match = TOKEN.search(page)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


@pytest.fixture
def login(app: Flask, services, make_user):
    """``login(name, role)``: a new user of ``role``, logged in on a fresh client."""

    def log_in(name: str = "op", role: str = "operator") -> Console:
        make_user(name, role, PASSWORD)
        client = app.test_client()
        page = client.get("/login").get_data(as_text=True)
        response = client.post("/login", data={"name": name, "password": PASSWORD,
                                               "csrf_token": csrf_token(page)})
        assert response.status_code == 303, response.get_data(as_text=True)
        return Console(client, services)

    return log_in


@pytest.fixture
def requested_cards(services) -> int:
    """Twelve requested cards, TC-000001 to TC-000012."""
    with unit_of_work(services.sessions) as session:
        return add_requested_cards(session, 12, "Test Organisation")


@pytest.fixture
def reviewing(login, services, requested_cards):
    """An operator at the Review production step, cards 10 and 11 produced."""
    op = login()
    instance_id = op.start()
    issue(op, instance_id, [10, 11])
    op.submit(instance_id, {"action": "next"})
    assert title(op.order_page(instance_id)) == "Review production"
    return op, instance_id


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture
def live_url(app) -> Iterator[str]:
    """The console served on a free local port by a real WSGI server, for the browser."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="console-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture
def chromium() -> Iterator[sync_api.Browser]:
    """Debian's headless Chromium driven by Playwright (no browser download)."""
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
