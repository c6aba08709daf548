"""End to end in headless Chromium: an operator issues two cards and completes the order."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
from playwright import sync_api

from engine.runtime import Runtime
from engine.web.app import create_app
from tests.web.conftest import PASSWORD


@pytest.fixture
def app(services):
    """The console on a runtime that starts engine work 2.5 s late: longer than a post waits for
    the next step (batch_orders.SETTLE_SECONDS), so progress is always seen."""

    def submit_later(instance_id: str) -> None:
        threading.Timer(2.5, services.runner.submit, [instance_id]).start()

    slow = Runtime(services.sessions, services.registry, submit=submit_later)
    return create_app(services=replace(services, runtime=slow))


@pytest.mark.browser
def test_operator_issues_two_cards_in_the_browser(live_url, chromium, make_user, requested_cards):
    make_user("op", "operator", PASSWORD)
    make_user("aud", "auditor", PASSWORD)
    page = chromium.new_page()
    page.set_default_timeout(30_000)
    expect = sync_api.expect
    heading = page.locator("h1")

    page.goto(f"{live_url}/login")
    page.get_by_label("User name").fill("op")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="BATCH ORDERS").click()
    expect(heading).to_have_text("BATCH ORDERS")
    page.get_by_role("button", name="Issue multiple temporary cards").click()
    # Each step first shows the progress view, which polls and moves on by itself.
    expect(heading).to_have_text("Working on the order")
    expect(heading).to_have_text("Search cards")
    page.get_by_label("Card number").fill("TC-00001")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("3 requested cards match.")).to_be_visible()
    page.get_by_label("Select card TC-000010").check()
    page.get_by_label("Select card TC-000011").check()
    page.get_by_role("button", name="Issue multiple temporary cards").click()

    expect(heading).to_have_text("Selected cards")
    expect(page.get_by_role("cell", name="TC-000011")).to_be_visible()
    page.get_by_role("button", name="Next").click()
    expect(heading).to_have_text("Working on the order")
    expect(heading).to_have_text("Review production", timeout=90_000)
    expect(page.locator("img.preview")).to_have_count(4)
    page.get_by_label("Everything is OK").check()
    page.get_by_role("button", name="Complete order").first.click()
    expect(heading).to_have_text("Order completed", timeout=60_000)

    page.get_by_role("button", name="Log out").click()
    page.get_by_label("User name").fill("aud")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(heading).to_have_text("Audit trail")
    page.get_by_role("link", name="CARDS").click()
    for number in ("TC-000010", "TC-000011"):
        page.get_by_label("Card number").fill(number)
        page.get_by_role("button", name="Show history").click()
        expect(heading).to_have_text(f"Card {number}")
        expect(page.locator("strong.state")).to_have_text("unassigned")
        expect(page.locator("table.history tbody tr").last).to_contain_text("unassigned")
        page.get_by_role("link", name="CARDS").click()
