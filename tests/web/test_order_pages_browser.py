"""An order's pages in headless Chromium: completing with failed cards asks on the page (never a
browser prompt); BATCH ORDERS lists finished orders and discards an open one after asking; an
order shows its options; the long Review production keeps its bar in view, at 1280 and 390 px.

CARDFLOW_SCREENSHOTS=folder saves full-page screenshots of BATCH ORDERS, a 50-card Review
production and its summary at both widths there, to look at.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright import sync_api

from engine import bootstrap
from engine.db import unit_of_work
from tasks.demo import add_requested_cards
from tasks.queries import order_for_instance
from tests.conftest import start_services
from tests.web.conftest import PASSWORD
from tests.web.console_steps import issue, title
from tests.web.order_stations import failing_station
from tests.web.test_accessibility import AXE, BLOCKING, RUN_AXE, STICKING_OUT

SCREENSHOTS = os.environ.get("CARDFLOW_SCREENSHOTS")
WIDTHS = (1280, 390)
FAILED = 3
expect = sync_api.expect


@pytest.fixture
def services(settings):
    """The product on a station whose first three blank cards refuse key generation."""
    start_services(settings).close()
    services = bootstrap.build_services(settings, failing_station(settings, FAILED))
    yield services
    services.close()


def review(op, cards: int, number_prefix: str = "TC-0000") -> str:
    """An order of the first ``cards`` requested cards at Review production; its instance id."""
    instance_id = op.start()
    pairs = [("action", "issue")] + [("card", str(card_id)) for card_id in range(1, cards + 1)]
    assert op.submit(instance_id, pairs, args={"number": number_prefix}).status_code == 303
    assert op.submit(instance_id, {"action": "next"}).status_code == 303
    assert title(op.order_page(instance_id)) == "Review production"
    return instance_id


def browser_page(chromium, live_url: str, width: int = 1280) -> sync_api.Page:
    """A page logged in as "op", failing on any browser prompt."""
    page = chromium.new_page(viewport={"width": width, "height": 800})
    page.set_default_timeout(30_000)
    page.on("dialog", lambda dialog: pytest.fail(f"a browser prompt appeared: {dialog.message}"))
    page.goto(f"{live_url}/login")
    page.get_by_label("User name").fill("op")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    return page


def accessible(page: sync_api.Page, name: str) -> None:
    """axe-core finds no serious or critical violation on the page as it is (a state no GET
    reaches, which test_accessibility cannot visit); a screenshot when asked for."""
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)
    page.evaluate(AXE.read_text())
    blocking = [f"{v['id']}: {v['help']}" for v in page.evaluate(RUN_AXE) if v["impact"] in BLOCKING]
    assert blocking == [], f"{name}: {blocking}"


def shoot(page: sync_api.Page, name: str) -> None:
    """A full-page screenshot at each width when CARDFLOW_SCREENSHOTS names a folder; the page never
    scrolls sideways on the phone."""
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 800})
        if SCREENSHOTS:
            Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}-{width}.png"), full_page=True)
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        sticking = page.evaluate(STICKING_OUT) if overflow > 0 else []
        assert overflow <= 0, f"{name} scrolls sideways by {overflow} px at {width} px: {sticking}"
    page.set_viewport_size({"width": 1280, "height": 800})


@pytest.mark.browser
def test_completing_with_failed_cards_asks_on_the_page(login, requested_cards, live_url, chromium):
    instance_id = review(login("op"), 10)
    page = browser_page(chromium, live_url)
    page.goto(f"{live_url}/orders/{instance_id}")
    page.get_by_label("Everything is OK").check()
    bar = page.locator(".sticky-actions")
    bar.get_by_role("button", name="Complete order").click()

    question = page.locator("#failed-question")
    expect(question).to_contain_text("3 of 10 cards failed. Complete the order anyway? "
                                     "Failed cards go back to requested.")
    expect(question).to_be_focused()
    accessible(page, "review-production-failed-question")
    expect(page.locator("h1")).to_have_text("Review production")
    page.get_by_label("Yes, complete the order with 3 failed cards").check()
    bar.get_by_role("button", name="Complete order").click()
    expect(page.locator("h1")).to_have_text("Order completed")
    expect(page.locator("p.summary")).to_contain_text("10 cards: 7 produced, 3 failed.")


@pytest.mark.browser
def test_finished_orders_and_discarding_an_open_one(login, requested_cards, live_url, chromium, services):
    op = login("op")
    instance_id = op.start()
    issue(op, instance_id, [10, 11])
    with unit_of_work(services.sessions) as session:
        number = order_for_instance(session, instance_id).id
    page = browser_page(chromium, live_url)
    page.get_by_role("link", name="BATCH ORDERS").click()
    open_row = page.locator("table.open-orders tbody tr")
    expect(open_row).to_have_count(1)
    expect(open_row).to_contain_text(f"Order {number}")
    expect(open_row).to_contain_text("Waiting for you: Selected cards")
    open_row.get_by_role("button", name=f"Discard order {number}").click()

    asking = page.locator("#discard-confirmation")
    expect(asking).to_contain_text(f"Discard order {number}? It has produced nothing; its 2 reserved cards")
    expect(asking).to_be_focused()
    accessible(page, "batch-orders-discard-question")
    asking.get_by_role("button", name=f"Discard order {number}").click()
    expect(page.get_by_text(f"Order {number} is discarded; its cards are free")).to_be_visible()
    expect(page.get_by_text("You have no open orders.")).to_be_visible()
    finished = page.locator("table.finished-orders tbody tr")
    expect(finished.first).to_contain_text(f"Order {number}")
    expect(finished.first).to_contain_text("cancelled")

    page.get_by_label("Order number").fill(f"#{number}")
    page.get_by_role("button", name="Search").click()
    expect(finished).to_have_count(1)
    page.get_by_label("Order number").fill("")
    page.get_by_label("Date").fill("31.02.2026")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#error-summary")).to_contain_text("Date:")
    expect(page.get_by_label("Date")).to_have_attribute("aria-invalid", "true")
    accessible(page, "batch-orders-wrong-search")


@pytest.mark.browser
def test_an_order_shows_the_options_it_runs_with(login, requested_cards, live_url, chromium):
    op = login("op")
    instance_id = op.start()
    page = browser_page(chromium, live_url)
    page.goto(f"{live_url}/orders/{instance_id}")
    expect(page.locator("h1")).to_have_text("Search cards")
    options = page.locator("#order-options")
    expect(options).to_have_text("Runs with TempCardsScriptOptions version 1: PIN length 6; PUK length 8; "
                                 "Encode the temporary card yes; Select certificates to be issued PIV "
                                 "Authentication; Validity days 14.")
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("h1")).to_have_text("Order cancelled")
    expect(page.locator("#order-options")).to_contain_text("PIN length 6; PUK length 8;")


@pytest.mark.browser
def test_a_50_card_review_keeps_its_bar_in_view(login, services, live_url, chromium):
    with unit_of_work(services.sessions) as session:
        add_requested_cards(session, 51, "Test Organisation")
    op = login("op")
    instance_id = review(op, 50)
    finished = op.start()
    issued = op.submit(finished, [("action", "issue"), ("card", "51")], args={"number": "TC-000051"})
    assert issued.status_code == 303
    op.submit(finished, {"action": "next"})
    assert op.submit(finished, {"action": "complete", "confirm_ok": "true"}).status_code == 303
    op.start()  # an open order at Search cards, to be seen on BATCH ORDERS

    page = browser_page(chromium, live_url)
    page.goto(f"{live_url}/batch-orders")
    shoot(page, "batch-orders")
    page.goto(f"{live_url}/orders/{instance_id}")
    expect(page.locator("img.preview")).to_have_count(94)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 800})
        page.evaluate("() => window.scrollTo(0, document.querySelector('table.review tbody tr:nth-child(40)')"
                      ".getBoundingClientRect().top + window.scrollY)")
        bar = page.locator(".sticky-actions")
        expect(bar).to_be_in_viewport()
        expect(bar.get_by_role("button", name="Complete order")).to_be_in_viewport()
        expect(bar.locator(".count")).to_contain_text("47 produced, 3 failed, of 50 cards.")
        if SCREENSHOTS:
            page.screenshot(path=str(Path(SCREENSHOTS) / f"review-production-scrolled-{width}.png"))
    page.evaluate("() => window.scrollTo(0, 0)")
    shoot(page, "review-production-50-cards")
    page.get_by_label("Everything is OK").check()
    page.locator(".sticky-actions").get_by_role("button", name="Complete order").click()
    page.get_by_label("Yes, complete the order with 3 failed cards").check()
    page.locator(".sticky-actions").get_by_role("button", name="Complete order").click()
    expect(page.locator("h1")).to_have_text("Order completed")
    shoot(page, "order-summary-50-cards")
