"""End to end in headless Chromium: an admin changes the process and the options in the browser;
operators' orders follow, each on the version it started with; a rollback undoes the change."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from engine.db import unit_of_work
from engine.versions import current_definition
from tasks.store import Card
from tests.web.conftest import PASSWORD
from tests.web.modeler_steps import insert_user_task_before

PROCESS = "TempCardsBoProcIssueMultiple"


def log_in(page: Page, base: str, name: str) -> None:
    """Log in through the login page."""
    page.goto(f"{base}/login")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def start_order(page: Page, base: str) -> str:
    """BATCH ORDERS > Issue multiple temporary cards; the order's URL once Search cards shows."""
    page.goto(f"{base}/batch-orders")
    page.get_by_role("button", name="Issue multiple temporary cards").click()
    expect(page.locator("h1")).to_have_text("Search cards")
    return page.url


def issue_card(page: Page, number: str) -> None:
    """Search one card number, tick it, Issue multiple temporary cards, then Next."""
    page.get_by_label("Card number").fill(number)
    page.get_by_role("button", name="Search").click()
    page.get_by_label(f"Select card {number}").check()
    page.get_by_role("button", name="Issue multiple temporary cards").click()
    expect(page.locator("h1")).to_have_text("Selected cards")
    page.get_by_role("button", name="Next").click()


def finish(page: Page) -> None:
    """At Review production: confirm and complete the order."""
    expect(page.locator("h1")).to_have_text("Review production", timeout=60_000)
    page.get_by_label("Everything is OK").check()
    page.get_by_role("button", name="Complete order").first.click()
    expect(page.locator("h1")).to_have_text("Order completed", timeout=60_000)


def pin_of(services, number: str) -> str:
    """The PIN custody holds for a produced card (a test may look; no page ever shows it)."""
    with unit_of_work(services.sessions) as session:
        card_id = session.query(Card.id).filter(Card.number == number).scalar()
    return services.station.encoder.custody.release(card_id)["pin"]


@pytest.mark.browser
def test_admin_changes_process_and_options_in_the_browser(live_url, chromium, make_user, services,
                                                         requested_cards):
    make_user("op", "operator", PASSWORD)
    make_user("adm", "admin", PASSWORD)
    operator = chromium.new_page(viewport={"width": 1280, "height": 900})
    admin = chromium.new_page(viewport={"width": 1400, "height": 1000})
    for page in (operator, admin):
        page.set_default_timeout(30_000)
    log_in(operator, live_url, "op")
    log_in(admin, live_url, "adm")

    old_order = start_order(operator, live_url)  # started on version 1

    # The admin inserts "Supervisor approval" before production in the modeler, validates, deploys.
    admin.goto(f"{live_url}/admin/processes/{PROCESS}/modeler")
    expect(admin.locator("#modeler-validate")).to_be_enabled()
    insert_user_task_before(admin, "Produce cards", "Supervisor approval", "supervisor_approval.schema.json",
                            "supervisor_approval.uischema.json")
    admin.get_by_role("button", name="Validate").click()
    expect(admin.locator("#modeler-status")).to_contain_text("Valid")
    admin.get_by_role("button", name="Deploy").click()
    expect(admin.locator("#modeler-status")).to_contain_text(f"Deployed {PROCESS} version 2")

    # A new order passes through the new step; the order started before keeps version 1.
    start_order(operator, live_url)
    issue_card(operator, "TC-000001")
    expect(operator.locator("h1")).to_have_text("Supervisor approval", timeout=60_000)
    operator.get_by_role("button", name="Approve").click()
    finish(operator)
    operator.goto(old_order)
    issue_card(operator, "TC-000002")
    finish(operator)
    assert pin_of(services, "TC-000002").isdigit() and len(pin_of(services, "TC-000002")) == 6

    # PIN length 8 in the options form: the next order's PINs have 8 digits.
    admin.goto(f"{live_url}/admin/options/TempCardsScriptOptions")
    admin.get_by_label("PIN length").fill("8")
    admin.get_by_role("button", name="Save options").click()
    expect(admin.locator(".deploy-outcome")).to_contain_text("TempCardsScriptOptions v2 deployed")

    # Roll the process back to version 1: the next order has no approval step.
    admin.goto(f"{live_url}/admin/")
    admin.locator(f"#process-{PROCESS}").get_by_role("button", name="Roll back to v1").click()
    expect(admin.locator(".flash")).to_contain_text("version 1 is now used by new orders")
    with unit_of_work(services.sessions) as session:
        assert current_definition(session, PROCESS).version == 1

    start_order(operator, live_url)
    issue_card(operator, "TC-000003")
    finish(operator)  # straight to Review production: no Supervisor approval
    pin = pin_of(services, "TC-000003")
    assert re.fullmatch(r"\d{8}", pin)
