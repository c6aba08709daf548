"""``cardflow run --processes 2``: two page processes serve the pages, their work runs on the
host, which serves none; /metrics reads the host's; a page process that dies comes back, and
the page processes end with their host."""

from __future__ import annotations

import html
import http.client
import os
import re
import signal
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest

from engine.db import unit_of_work
from engine.users import add_user
from tasks.demo import add_requested_cards
from tests.conftest import make_settings, start_services
from tests.integration.workers import WebServer, write_stations

PASSWORD = "processes-test-password"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
START = re.compile(r'<form method="post" action="(/batch-orders/start/[^"]+)"')
TASK_FORM = re.compile(r'<form method="post" action="([^"]+)" class="task-form">')
CARD_BOX = re.compile(r'<input type="checkbox" name="card" value="(\d+)"')
TITLE = re.compile(r"<h1>([^<]*)</h1>")
STEPS_COUNT = re.compile(r"^cardflow_step_seconds_count (\S+)$", re.M)


class Client:
    """One browser's keep-alive connection and cookies."""

    def __init__(self, port: int, timeout: float = 30):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, fields: list[tuple[str, str]] | None = None):
        """(status, body, redirect target)."""
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = None
        if fields is not None:
            body = urlencode(fields)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.connection.request(method, path, body, headers)
        response = self.connection.getresponse()
        text = response.read().decode()
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        return response.status, text, urlsplit(response.headers.get("Location", "")).path

    def log_in(self) -> None:
        _status, page, _ = self.request("GET", "/login")
        status, _page, _ = self.request("POST", "/login", [("name", "op"), ("password", PASSWORD),
                                                           ("csrf_token", TOKEN.search(page).group(1))])
        assert status == 303

    def post_step(self, page: str, fields: list[tuple[str, str]]) -> str:
        """Post the step's form on ``page``; the order page after it."""
        action = html.unescape(TASK_FORM.search(page).group(1))
        status, _page, location = self.request("POST", action,
                                               [*fields, ("csrf_token", TOKEN.search(page).group(1))])
        assert status == 303, _page[:500]
        return self.request("GET", location)[1]


@pytest.fixture
def server(tmp_path: Path):
    """`cardflow run --processes 2` on SQLite with an operator and 20 requested cards."""
    settings = make_settings(tmp_path / "instance")
    services = start_services(settings)
    with unit_of_work(services.sessions) as session:
        add_user(session, "op", "operator", PASSWORD, actor="test")
        add_requested_cards(session, 20, settings.organisation)
    services.close()
    server = WebServer(settings, write_stations(tmp_path / "stations.toml", ["virtual"], 0.0), processes=2)
    server.start()
    try:
        yield server
    finally:
        if server.process.poll() is None:
            os.kill(server.process.pid, signal.SIGCONT)
        server.stop()


def page_processes(server: WebServer) -> list[int]:
    """The host's page processes (not its drawing process)."""
    return [pid for pid in _children(server) if b"engine.web_processes" in _cmdline(pid)]


def drawing_processes(server: WebServer) -> list[int]:
    """The host's drawing processes (multiprocessing's spawned children)."""
    return [pid for pid in _children(server) if b"spawn_main" in _cmdline(pid)]


def _children(server: WebServer) -> list[int]:
    return [int(pid) for tasks in Path(f"/proc/{server.process.pid}/task").glob("*/children")
            for pid in tasks.read_text().split()]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


@contextmanager
def stopped(*pids: int):
    """The processes ``pids`` frozen (SIGSTOP) meanwhile."""
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


def answered(client: Client) -> bool:
    """Whether ``client``'s connection gets the login page within its timeout."""
    try:
        return client.request("GET", "/login")[0] == 200
    except OSError:
        return False


def page_process_client(server: WebServer, timeout: float = 60) -> Client:
    """An open connection that answers while the host is frozen: a page process serves it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        client = Client(server.port, timeout=5)
        with stopped(server.process.pid):
            serving = answered(client)
        if serving:
            client.connection.sock.settimeout(30)
            return client
        client.connection.close()
        time.sleep(0.3)
    raise AssertionError("no page process answered")


def wait_for_page_processes(server: WebServer, count: int = 2) -> list[int]:
    """Until ``count`` page processes run and pages are served without the host; their pids."""
    deadline = time.monotonic() + 20
    while len(page_processes(server)) != count and time.monotonic() < deadline:
        time.sleep(0.2)
    page_process_client(server).connection.close()
    return page_processes(server)


def test_the_host_serves_no_page_and_runs_the_work_of_the_page_processes(server):
    pages = wait_for_page_processes(server)
    assert len(pages) == 2
    # The host is the station: its drawing process is started before the first card needs it.
    assert len(drawing_processes(server)) == 1
    # With both page processes frozen, the host answers nothing: its interpreter is the engine's.
    waiting = Client(server.port, timeout=2)
    with stopped(*pages):
        assert not answered(waiting)
    waiting.connection.close()

    # Which page process takes a connection is the board's (tests/engine/test_host_link.py).
    browser = page_process_client(server)
    browser.log_in()

    # An order started and taken through production from the page process: the engine steps
    # and the card jobs it hands over run on the host.
    _status, page, _ = browser.request("GET", "/batch-orders")
    status, _page, location = browser.request("POST", html.unescape(START.search(page).group(1)),
                                              [("csrf_token", TOKEN.search(page).group(1))])
    assert status == 303
    page = browser.request("GET", location)[1]
    assert 'class="card-picker"' in page, TITLE.search(page)
    cards = CARD_BOX.findall(page)[:2]
    page = browser.post_step(page, [("action", "issue"), *[("card", card) for card in cards]])
    assert TITLE.search(page).group(1) == "Selected cards"
    page = browser.post_step(page, [("action", "next")])
    deadline = time.monotonic() + 60
    while TITLE.search(page).group(1) != "Review production" and time.monotonic() < deadline:
        time.sleep(0.3)
        page = browser.request("GET", location)[1]
    assert TITLE.search(page).group(1) == "Review production"
    assert "(2 produced, 0 failed)" in browser.request("GET", "/batch-orders")[1]

    # The page process runs no engine step: the steps its /metrics counts are the host's.
    assert float(STEPS_COUNT.search(browser.request("GET", "/metrics")[1]).group(1)) > 0
    browser.connection.close()


def test_a_page_process_comes_back_when_it_dies_and_all_end_with_their_host(server):
    first, other = wait_for_page_processes(server)
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (first in (now := page_processes(server)) or len(now) < 2):
        time.sleep(0.2)
    now = wait_for_page_processes(server)
    assert first not in now and other in now

    server.kill()  # kill -9 of the host: the page processes must not keep the port
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (any(map(_cmdline, now)) or server.answering()):
        time.sleep(0.1)
    assert not any(map(_cmdline, now)), "a page process outlived its host"
    assert not server.answering()
    server.start()  # the same port again
    client = Client(server.port)
    assert answered(client)
    client.connection.close()
