"""Every console page passes axe-core in headless Chromium, on a wide screen and on a phone.

Each role logs in through the login page and visits each of its pages (a batch order at each
of its steps) at 1280 and at 390 px: axe-core (tests/axe, installed by make setup) finds no
violation of impact serious or critical, and on the phone no page scrolls sideways (wide tables
scroll inside their own box). The pages come from the app's url_map: a new page fails
``test_every_page_is_visited`` until it is listed here, or excluded with the reason.

CARDFLOW_SCREENSHOTS=folder saves a full-page screenshot of each visit there, to look at.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from flask import Flask, url_for
from playwright import sync_api
from sqlalchemy import update

from engine.db import read_only, unit_of_work
from engine.runtime import Runtime
from engine.store import Instance
from tasks.demo import add_requested_cards
from tasks.queries import order_for_instance
from tests.conftest import make_settings
from tests.web.conftest import PASSWORD
from tests.web.console_steps import issue, title

AXE = Path(__file__).parents[1] / "axe" / "node_modules" / "axe-core" / "axe.min.js"
WIDTHS = (1280, 390)
BLOCKING = ("serious", "critical")
SCREENSHOTS = os.environ.get("CARDFLOW_SCREENSHOTS")
RUN_AXE = "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
# The first elements whose right edge is past the window, as tag.class.
STICKING_OUT = """() => [...document.body.querySelectorAll('*')]
    .filter((element) => element.getBoundingClientRect().right > window.innerWidth + 1)
    .slice(0, 6).map((element) => [element.tagName.toLowerCase(), ...element.classList].join('.'))"""

# Endpoints that answer GET with no page of their own, and why they are not visited.
NOT_PAGES = {
    "static": "style sheets and scripts",
    "bpmn_assets.asset": "the bpmn-js files the diagram and modeler pages load",
    "cards.spool_file": "card preview images and PDFs, shown on the Review production page",
    "batch_orders.status": "JSON polled by the progress view",
    "audit.export_csv": "a CSV download",
    "audit.export_json": "a JSON download",
    "health.healthz": "JSON for monitoring",
    "health.metrics": "Prometheus metrics as text",
    "auth.index": "a redirect to the role's first page",
    "search.index": "SEARCH, checked at each step of test_card_life_browser",
    "search.holder": "a holder's page, checked in test_card_life_browser",
    "pki.ca_certificate": "the CA certificate (DER) for relying parties",
    "pki.crl": "the CRL (DER) for relying parties",
    "pki.ocsp_get": "OCSP answers (DER) for relying parties",
}

@dataclass(frozen=True)
class Page:
    """A page as one role sees it: a name for the report, its endpoint and URL values, and what
    shows once its own script has drawn it."""

    name: str
    endpoint: str
    values: dict = field(default_factory=dict)
    ready: str = "h1"


@dataclass(frozen=True)
class Orders:
    """The operator's orders, one at each step (instance ids), and an order's number."""

    searching: str = "i"
    selected: str = "i"
    reviewing: str = "i"
    ended: str = "i"
    working: str = "i"
    stopped: str = "i"
    order_number: int = 1


def operator_pages(orders: Orders) -> list[Page]:
    """BATCH ORDERS and an order at each of its steps, the card pages, the error page."""
    return [
        Page("BATCH ORDERS", "batch_orders.index"),
        Page("Search cards, before a search", "batch_orders.order", {"instance_id": orders.searching}),
        Page("Search cards, with results", "batch_orders.order",
             {"instance_id": orders.searching, "number": "TC-00001"}),
        Page("Search cards, a wrong date", "batch_orders.order",
             {"instance_id": orders.searching, "from": "yesterday"}),
        Page("Selected cards", "batch_orders.order", {"instance_id": orders.selected}),
        Page("Review production", "batch_orders.order", {"instance_id": orders.reviewing}),
        Page("Order summary", "batch_orders.order", {"instance_id": orders.ended}),
        Page("Working on the order", "batch_orders.order", {"instance_id": orders.working}),
        Page("Order stopped on an error", "batch_orders.order", {"instance_id": orders.stopped}),
        Page("Card lookup", "cards.lookup"),
        Page("Card history", "cards.history", {"number": "TC-000010"}),
        Page("Not found", "cards.history", {"number": "TC-999999"}),
    ]


def admin_pages(orders: Orders) -> list[Page]:
    """Every page of the admin console."""
    process = {"process_id": "TempCardsBoProcIssueMultiple"}
    version = {"kind": "process", "name": "TempCardsBoProcIssueMultiple"}
    return [
        Page("Processes, forms and options", "admin.index"),
        Page("Process source", "admin.source", {**version, "version": 1}),
        Page("Process diff", "admin.diff", {**version, "a": 1, "b": 1}),
        Page("Process diagram", "admin.diagram", {**process, "version": 1}, ready=".djs-container svg"),
        Page("Process modeler", "admin.modeler", process, ready="#modeler-properties *"),
        Page("Process XML", "admin.process_xml", process),
        Page("New form", "admin.form_new"),
        Page("Form editor", "admin.form_edit", {"name": "review_production"}),
        Page("Options", "admin.options", {"name": "TempCardsScriptOptions"}),
        Page("Users", "admin.users"),
        Page("Stations", "admin.stations"),
        Page("Card history", "cards.history", {"number": "TC-000010"}),
    ]


def auditor_pages(orders: Orders) -> list[Page]:
    """The audit trail, the orders and an order, with their filters."""
    return [
        Page("Audit trail", "audit.trail"),
        Page("Audit trail, a wrong filter", "audit.trail", {"order": "x", "since": "never"}),
        Page("Orders", "audit.orders"),
        Page("Order", "audit.order", {"order_id": orders.order_number}, ready=".djs-container svg"),
        Page("Card lookup", "cards.lookup"),
        Page("Card history", "cards.history", {"number": "TC-000011"}),
    ]


ROLES: dict[str, Callable[[Orders], list[Page]]] = {
    "operator": operator_pages, "admin": admin_pages, "auditor": auditor_pages}


@pytest.fixture
def settings(tmp_path):
    """SQLite; the sweeper waits, so the order held at "Working on the order" stays there."""
    return replace(make_settings(tmp_path / "instance"), sweep_seconds=3600)


@pytest.fixture
def orders(login, services, requested_cards) -> Orders:
    """An operator ("op") with an order at each step; the ended one's cards are TC-000010/11."""
    with unit_of_work(services.sessions) as session:
        add_requested_cards(session, 8, "Test Organisation")
    op = login("op", "operator")
    ended = op.start()
    issue(op, ended, [10, 11])
    op.submit(ended, {"action": "next"})
    assert op.submit(ended, {"action": "complete", "confirm_ok": "true"}).status_code == 303
    reviewing = op.start()
    issue(op, reviewing, [12, 13])
    op.submit(reviewing, {"action": "next"})
    assert title(op.order_page(reviewing)) == "Review production"
    selected = op.start()
    issue(op, selected, [14, 15, 16])
    searching = op.start()
    op.order_page(searching)
    # Started on a runtime that never runs them: the engine is still "working" on both.
    held = Runtime(services.sessions, services.registry, submit=lambda instance_id: None)
    working, stopped = (held.start("TempCardsBoProcIssueMultiple", "op") for _ in range(2))
    with unit_of_work(services.sessions) as session:
        session.execute(update(Instance).where(Instance.id == stopped).values(
            status="error", error="The printer of station virtual did not answer (a test's stand-in)."))
    with read_only(services.sessions) as session:
        number = order_for_instance(session, ended).id
    return Orders(searching, selected, reviewing, ended, working, stopped, number)


def test_every_page_is_visited(app: Flask):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules() if "GET" in rule.methods}
    visited = {page.endpoint for pages in ROLES.values() for page in pages(Orders())} | {"auth.login"}
    unvisited = sorted(endpoints - visited - set(NOT_PAGES))
    assert unvisited == [], "add these pages to a role's list, or to NOT_PAGES with the reason"
    assert sorted(set(NOT_PAGES) - endpoints) == [], "these endpoints no longer exist"


def problems(page: sync_api.Page, role: str, name: str, width: int) -> list[str]:
    """What axe-core finds serious or critical on the page, and a sideways scroll on a phone."""
    if SCREENSHOTS:
        slug = "".join(c if c.isalnum() else "-" for c in f"{role} {name}".lower())
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{slug}-{width}.png"), full_page=True)
    if not page.evaluate("() => Boolean(window.axe)"):
        page.evaluate(AXE.read_text())
    violations = page.evaluate(RUN_AXE)
    blocking = [v for v in violations if v["impact"] in BLOCKING]
    found = [f"{name} at {width} px: {v['impact']} {v['id']}: {v['help']}: "
             + "; ".join(node["html"][:160] for node in v["nodes"][:3])
             for v in blocking]
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    if width < 800 and overflow > 0:
        found.append(f"{name} at {width} px: the page scrolls sideways by {overflow} px; sticking out: "
                     + ", ".join(page.evaluate(STICKING_OUT)))
    return found


def log_in(page: sync_api.Page, live_url: str, role: str, name: str) -> list[str]:
    """Log in through the login page, checking that page at each width first."""
    page.goto(f"{live_url}/login")
    found = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        found += problems(page, role, "Log in", width)
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    sync_api.expect(page.get_by_role("button", name="Log out")).to_be_visible()
    return found


@pytest.mark.browser
@pytest.mark.parametrize("role", ROLES)
def test_every_page_passes_axe_on_a_wide_screen_and_a_phone(role, app, orders, live_url, chromium, make_user):
    assert AXE.is_file(), "axe-core is missing: run make setup (npm ci --prefix tests/axe)"
    name = "op" if role == "operator" else role
    if role != "operator":
        make_user(name, role, PASSWORD)
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
    page = chromium.new_page()
    page.set_default_timeout(30_000)
    found = log_in(page, live_url, role, name)
    with app.test_request_context():
        visits = [(visit, url_for(visit.endpoint, **visit.values)) for visit in ROLES[role](orders)]
    for visit, path in visits:
        page.goto(f"{live_url}{path}")
        page.locator(visit.ready).first.wait_for()
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            found += problems(page, role, visit.name, width)
    assert found == [], "\n".join(found)


@pytest.mark.browser
def test_the_keyboard_skips_to_the_content_and_the_focus_shows(app, live_url, chromium, make_user):
    make_user("op", "operator", PASSWORD)
    page = chromium.new_page(viewport={"width": 390, "height": 800})
    page.goto(f"{live_url}/login")
    page.get_by_label("User name").fill("op")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    skip = page.get_by_role("link", name="Skip to the page's content")
    sync_api.expect(skip).not_to_be_in_viewport()

    page.keyboard.press("Tab")
    sync_api.expect(skip).to_be_focused()
    sync_api.expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    sync_api.expect(page.locator("main")).to_be_focused()
    page.keyboard.press("Tab")
    ring = page.evaluate("""() => {
        const element = document.activeElement, style = getComputedStyle(element);
        return {inMain: document.querySelector('main').contains(element), style: style.outlineStyle,
                width: parseFloat(style.outlineWidth)};
    }""")
    assert ring == {"inMain": True, "style": "solid", "width": 3}
