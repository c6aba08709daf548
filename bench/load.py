"""Bench: pages under concurrent operators (issue 9; floor: p95 under 200 ms for every page kind).

`cardflow run` (the embedded default: waitress, in-process runner and station) serves a database
seeded with N requested cards; each virtual operator logs in, opens orders, and walks the pages
an operator walks, over HTTP on loopback, one request after the other: BATCH ORDERS, an order's
step, Search in the card picker with a filter (and its next page), a card's history; every few
rounds it issues two cards, presses Next, and completes the order, so production writes while
the others read. Auditors read the audit trail meanwhile.

Two phases on the same server, one table each:
1. Operators (the floor): each operator clicks every ``--think`` seconds on average (uniform from
   half to one and a half of it; default 1 s). A person reads a page and fills a form between two
   clicks, so one a second is already several times busier than an operator working all day.
2. Saturation (capacity): the same walks with no pause at all, as fast as the server answers.
   Here the latency is queueing (Little's law: clients / throughput), so the line to read is the
   throughput: how many requests a second the server carries, and so how many operators at one
   click a second it would serve. ``--saturation-seconds 0`` skips it.

Run from the project root:
    .venv/bin/python -m bench.load [--operators 20] [--seconds 60] [--think 1] [--database-url URL]
A PostgreSQL URL gets a private schema, dropped afterwards.
"""

from __future__ import annotations

import argparse
import html
import http.client
import os
import random
import re
import statistics
import tempfile
import threading
import time
from collections import defaultdict
from contextlib import nullcontext
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from sqlalchemy import text

from engine.db import unit_of_work
from engine.users import add_user
from tasks.demo import add_requested_cards
from tests.conftest import make_settings, private_schema, start_services
from tests.integration.workers import WebServer, write_stations

PASSWORD = "load-bench-password"
FLOOR_MS = 200.0
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
TASK_FORM = re.compile(r'<form method="post" action="([^"]+)" class="task-form">')
NEXT_LINK = re.compile(r'<a href="([^"]+)" rel="next">')
# The picker's in-step page button (issue 10): it posts the ticks, then the step is drawn again.
NEXT_BUTTON = re.compile(r'data-page="next"\s+formaction="([^"]+)"')
CARD_BOX = re.compile(r'<input type="checkbox" name="card" value="(\d+)"([^>]*)>')
TITLE = re.compile(r"<h1>([^<]*)</h1>")
PAGES = ("BATCH ORDERS", "order step", "Search with a filter", "Search, next page", "card history",
         "progress poll", "audit trail", "audit orders")


class Recorder:
    """Every timed request's page kind, milliseconds and whether it failed."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.lock = threading.Lock()

    def add(self, kind: str, ms: float, failed: bool) -> None:
        """Record one request."""
        with self.lock:
            self.samples[kind].append(ms)
            self.errors[kind] += failed


class Browser:
    """One operator's keep-alive connection and cookies; every request is timed under a page kind."""

    def __init__(self, port: int, recorder: Recorder, think: float, seed: int):
        self.recorder, self.think, self.random = recorder, think, random.Random(seed)
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.cookies: dict[str, str] = {}

    def request(self, kind: str | None, method: str, path: str, fields: list[tuple[str, str]] | None = None,
                expect: tuple[int, ...] = (200,)) -> tuple[int, str, str]:
        """(status, body, Location) of one request; 5xx, an unexpected status or no answer is an error.

        A timed request (``kind``) comes after the operator's think time: half to one and a half ``think``.
        """
        if kind is not None and self.think:
            time.sleep(self.think * self.random.uniform(0.5, 1.5))
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = None
        if fields is not None:
            body = urlencode(fields)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        began = time.perf_counter()
        try:
            self.connection.request(method, path, body, headers)
            response = self.connection.getresponse()
            text = response.read().decode()
            status = response.status
        except (OSError, http.client.HTTPException):
            self.connection.close()
            status, text, response = 599, "", None
        ms = (time.perf_counter() - began) * 1000
        if response is not None:
            for header in response.headers.get_all("Set-Cookie") or []:
                name, _, rest = header.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0]
        if kind is not None:
            self.recorder.add(kind, ms, status not in expect)
        location = urlsplit(response.headers.get("Location", "") if response is not None else "")
        return status, text, location.path + (f"?{location.query}" if location.query else "")

    def log_in(self, name: str) -> None:
        """Log in as ``name`` (not timed: the password hash is slow by design)."""
        _status, page, _ = self.request(None, "GET", "/login")
        status, _page, _ = self.request(None, "POST", "/login", [("name", name), ("password", PASSWORD),
                                                                 ("csrf_token", TOKEN.search(page).group(1))])
        assert status == 303, f"{name} could not log in ({status})"

    def start_order(self, kind: str | None) -> str:
        """Press "Issue multiple temporary cards" on BATCH ORDERS; the new order's instance id."""
        _status, page, _ = self.request(None, "GET", "/batch-orders")
        start = "/batch-orders/start/TempCardsBoProcIssueMultiple"
        status, _page, location = self.request(kind, "POST", start,
                                               [("csrf_token", TOKEN.search(page).group(1))], expect=(303,))
        assert status == 303, f"no order started ({status})"
        return location.rsplit("/", 1)[-1]


def operator(browser: Browser, orders: list[str], deadline: float, args, seed: int) -> None:
    """Until ``deadline``: BATCH ORDERS, an open order's step (Search cards), Search with a filter
    and its next page, a card's history; every ``issue_every`` rounds the operator's first order
    goes one step further (issue two cards, Next, production, Complete order, the next order)."""
    rnd = random.Random(seed)
    rounds = 0
    while time.monotonic() < deadline:
        rounds += 1
        browser.request("BATCH ORDERS", "GET", "/batch-orders")
        searching = orders[1 + rounds % (len(orders) - 1)]
        browser.request("order step", "GET", f"/orders/{searching}")
        search(browser, searching, rnd, args.cards)
        browser.request("card history", "GET", f"/cards/TC-{rnd.randrange(1, args.cards):06d}")
        if rounds % args.issue_every == 0:
            produce(browser, orders, rnd, args.cards)


def search(browser: Browser, order: str, rnd: random.Random, cards: int) -> str:
    """Search the order's card picker with a number prefix (of a thousand cards: TC-012 of 20,000)
    and a 25-day window (of the 30 the cards were requested in), then its next page."""
    today = date.today()
    prefix = f"TC-{rnd.randrange(cards // 2, cards):06d}"[:6]
    query = {"number": prefix, "from": str(today - timedelta(days=25)), "to": str(today)}
    _status, page, _ = browser.request("Search with a filter", "GET", f"/orders/{order}?{urlencode(query)}")
    following = NEXT_LINK.search(page)
    button = NEXT_BUTTON.search(page)
    if button:
        _status, _page, location = browser.request(
            "Search, next page (POST)", "POST", html.unescape(button.group(1)),
            [("action", "keep"), ("csrf_token", TOKEN.search(page).group(1))], expect=(303,))
        if location:
            browser.request("Search, next page", "GET", location)
    elif following:
        browser.request("Search, next page", "GET", html.unescape(following.group(1)))
    return page


def produce(browser: Browser, orders: list[str], rnd: random.Random, cards: int) -> None:
    """Take the operator's first order one step further, or start the next when it ended."""
    status, page, _ = browser.request("order step", "GET", f"/orders/{orders[0]}")
    title = (TITLE.search(page) or [None, ""])[1]
    if 'class="card-picker"' in page:
        page = search(browser, orders[0], rnd, cards)
        free = [card for card, rest in CARD_BOX.findall(page) if "disabled" not in rest]
        if len(free) >= 2:
            _post(browser, page, "issue 2 cards (POST)",
                  [("action", "issue"), *[("card", card) for card in rnd.sample(free, 2)]])
    elif title == "Selected cards":
        _post(browser, page, "Next: production (POST)", [("action", "next")])
    elif title == "Review production":
        _post(browser, page, "Complete order (POST)", [("action", "complete"), ("confirm_ok", "true")])
    elif title == "Working on the order":
        browser.request("progress poll", "GET", f"/orders/{orders[0]}/status")
    elif status == 200:  # completed or stopped
        orders[0] = browser.start_order("start order (POST)")


def _post(browser: Browser, page: str, kind: str, fields: list[tuple[str, str]]) -> None:
    """Post the step's form on ``page`` with ``fields`` and its CSRF token, timed as ``kind``.
    A post that completes a step answers once the engine reached the next one (up to 1.5 s):
    Next waits for its cards' production."""
    action = TASK_FORM.search(page)
    if action:
        browser.request(kind, "POST", html.unescape(action.group(1)),
                        [*fields, ("csrf_token", TOKEN.search(page).group(1))], expect=(303, 400, 409))


def auditor(browser: Browser, deadline: float, seed: int) -> None:
    """Read the audit trail (all, then logins only) and the orders until ``deadline``."""
    rnd = random.Random(seed)
    while time.monotonic() < deadline:
        browser.request("audit trail", "GET", rnd.choice(("/audit/", "/audit/?action=login")))
        browser.request("audit orders", "GET", "/audit/orders")


def seed(settings, operators: int, auditors: int, cards: int) -> None:
    """Deploy, add the users and ``cards`` requested cards."""
    services = start_services(settings)
    try:
        with unit_of_work(services.sessions) as session:
            for number in range(operators):
                add_user(session, f"op{number:02d}", "operator", PASSWORD, actor="bench")
            for number in range(auditors):
                add_user(session, f"auditor{number:02d}", "auditor", PASSWORD, actor="bench")
            add_requested_cards(session, cards, settings.organisation)
        if services.db.dialect.name == "postgresql":
            # A service that has run a while has its statistics from autovacuum; a freshly seeded
            # schema has none until autovacuum next wakes (up to a minute), and PostgreSQL plans
            # the card picker for a few rows instead of 20,000 (a sort of them all each page).
            with services.db.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.execute(text("VACUUM ANALYZE"))
    finally:
        services.close()


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user and system) process ``pid`` and its live children (page processes, the
    drawing process) have used so far (Linux /proc); a child that ended meanwhile is left out."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    children = [int(child) for tasks in Path(f"/proc/{pid}/task").glob("*/children")
                for child in tasks.read_text().split()]
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(cpu_seconds(child) for child in children)


def machine_busy() -> tuple[int, int]:
    """(busy, all) CPU ticks of the whole machine so far (Linux /proc/stat): every process, the
    database server's included."""
    ticks = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle and waiting for I/O
    return sum(ticks) - idle, sum(ticks)


class Phase:
    """What one phase measured: the requests, its seconds, the server's and this process's CPU,
    and the share of the whole machine's CPU that was busy."""

    def __init__(self, title: str, recorder: Recorder, seconds: float, server_cpu: float, own_cpu: float,
                 machine: float):
        self.title, self.recorder, self.seconds = title, recorder, seconds
        self.server_cpu, self.own_cpu, self.machine = server_cpu, own_cpu, machine


def walk(server: WebServer, operators: list[Browser], auditors: list[Browser], orders: list[list[str]],
         args, think: float, seconds: float, title: str) -> Phase:
    """Everyone walks their pages for ``seconds``, ``think`` seconds apart on average."""
    recorder = Recorder()
    for browser in operators + auditors:
        browser.recorder, browser.think = recorder, think
    began, cpu, own = time.monotonic(), cpu_seconds(server.process.pid), time.process_time()
    busy, ticks = machine_busy()
    deadline = began + seconds
    threads = [threading.Thread(target=operator, args=(browser, orders[n], deadline, args, n))
               for n, browser in enumerate(operators)]
    threads += [threading.Thread(target=auditor, args=(browser, deadline, 1000 + n))
                for n, browser in enumerate(auditors)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    busy_after, ticks_after = machine_busy()
    return Phase(title, recorder, time.monotonic() - began, cpu_seconds(server.process.pid) - cpu,
                 time.process_time() - own, (busy_after - busy) / max(ticks_after - ticks, 1))


def run(settings, folder: Path, args) -> list[Phase]:
    """Seed, serve, log everyone in, open orders, then walk the pages: operators, then saturation."""
    seed(settings, args.operators, args.auditors, args.cards)
    server = WebServer(settings, write_stations(folder / "stations.toml", ["virtual"], 0.0), args.processes)
    server.start()
    try:
        operators = [Browser(server.port, Recorder(), args.think, n) for n in range(args.operators)]
        auditors = [Browser(server.port, Recorder(), args.think, 1000 + n) for n in range(args.auditors)]
        orders: list[list[str]] = []
        for number, browser in enumerate(operators):
            browser.log_in(f"op{number:02d}")
            orders.append([browser.start_order(None) for _ in range(args.open_orders)])
        for number, browser in enumerate(auditors):
            browser.log_in(f"auditor{number:02d}")
        time.sleep(2.0)  # the new orders' first engine steps
        phases = [walk(server, operators, auditors, orders, args, args.think, args.seconds,
                       f"operators: one click every {args.think:g} s on average")]
        if args.saturation_seconds > 0:
            phases.append(walk(server, operators, auditors, orders, args, 0.0, args.saturation_seconds,
                               "saturation: no pause between clicks"))
    finally:
        server.stop()
    return phases


def report(phase: Phase, floor: bool) -> None:
    """The phase's table: per page kind count, req/s, p50, p95, errors; the CPU; then the floor
    (``floor``) or the capacity it shows."""
    recorder, seconds = phase.recorder, phase.seconds
    print(f"\n{phase.title}")
    print(f"{'page':24s} {'count':>7s} {'req/s':>7s} {'p50 ms':>8s} {'p95 ms':>8s} {'errors':>7s}")
    kinds = [kind for kind in PAGES if kind in recorder.samples]
    kinds += sorted(kind for kind in recorder.samples if kind not in PAGES)
    worst = None
    for kind in kinds:
        samples = sorted(recorder.samples[kind])
        p50, p95 = statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.95))]
        if kind in PAGES and (worst is None or p95 > worst[1]):
            worst = (kind, p95)
        print(f"{kind:24s} {len(samples):7d} {len(samples) / seconds:7.1f} {p50:8.1f} {p95:8.1f} "
              f"{recorder.errors[kind]:7d}")
    total = sum(len(samples) for samples in recorder.samples.values())
    print(f"{'all requests':24s} {total:7d} {total / seconds:7.1f}")
    per_request = 1000 / max(total, 1)
    print(f"server CPU: {phase.server_cpu / seconds:.0%} of a core, {phase.server_cpu * per_request:.1f} ms "
          "a request (production and engine steps included)")
    print(f"load generator CPU: {phase.own_cpu / seconds:.0%} of a core, "
          f"{phase.own_cpu * per_request:.1f} ms a request")
    print(f"whole machine: {phase.machine:.0%} of its {os.cpu_count()} cores busy (the database server and "
          "anything else running included)")
    errors = sum(recorder.errors.values())
    if floor:
        met = worst is not None and worst[1] < FLOOR_MS and errors == 0
        print(f"floor: p95 under {FLOOR_MS:.0f} ms on every page, no errors: {'MET' if met else 'NOT MET'} "
              f"(slowest page: {worst[0]}, p95 {worst[1]:.0f} ms; errors: {errors})")
    else:
        print(f"capacity: {total / seconds:.0f} requests a second, about {total / seconds:.0f} operators "
              f"clicking once a second; errors: {errors} (slowest page p95 {worst[1]:.0f} ms, queueing)")


def main() -> None:
    """Parse the arguments, run the bench on SQLite or a private PostgreSQL schema, print the table."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--operators", type=int, default=20)
    parser.add_argument("--auditors", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--think", type=float, default=1.0,
                        help="an operator's mean seconds between two clicks in the operators phase")
    parser.add_argument("--saturation-seconds", type=float, default=60.0,
                        help="length of the saturation phase (no pause between clicks); 0 skips it")
    parser.add_argument("--cards", type=int, default=20_000)
    parser.add_argument("--open-orders", type=int, default=3, help="open orders per operator (2 or more)")
    parser.add_argument("--issue-every", type=int, default=4,
                        help="rounds between two steps of the order the operator takes through production")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1,
                        help="cardflow run --processes: processes serving pages (default: one a core)")
    parser.add_argument("--database-url", help="default: SQLite in a temporary folder")
    args = parser.parse_args()
    url = args.database_url
    kind = "PostgreSQL" if url and url.startswith("postgresql") else "SQLite"
    with tempfile.TemporaryDirectory() as folder, \
            private_schema(url, "load") if kind == "PostgreSQL" else nullcontext(url) as database_url:
        settings = make_settings(Path(folder) / "instance", database_url)
        phases = run(settings, Path(folder), args)
    print(f"{args.operators} operators + {args.auditors} auditors, {kind}, {args.cards:,} requested cards, "
          f"{args.open_orders} open orders each, {args.seconds:.0f} s a phase, "
          f"cardflow run --processes {args.processes}")
    for number, phase in enumerate(phases):
        report(phase, floor=number == 0)


if __name__ == "__main__":
    main()
