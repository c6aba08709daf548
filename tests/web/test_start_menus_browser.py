"""In headless Chromium: Quick search > Temporary card > Request temporary cards from the header,
by mouse and by keyboard, and Lock temporary card from a card's page; the menu, the steps and
the card page pass axe-core at 1280 and 390 px without a sideways scroll.

CARDFLOW_SCREENSHOTS=folder saves each page at each width there, to look at.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright import sync_api
from sqlalchemy import update

from engine.db import unit_of_work
from tasks.demo import add_requested_cards
from tasks.store import Card, utcnow
from tests.web.console_steps import card_states
from tests.web.test_accessibility import WIDTHS, problems
from tests.web.test_card_history_browser import logged_in


def at_each_width(page: sync_api.Page, name: str) -> list[str]:
    """What axe-core and the phone width find on ``page``, at every width, back at 1280 px."""
    found = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        found += problems(page, "operator", name, width)
    page.set_viewport_size({"width": 1280, "height": 900})
    return found


@pytest.mark.browser
def test_request_from_the_menu_and_lock_from_the_card_page(live_url, chromium, login, services):
    login("op")
    page = logged_in(chromium, live_url, "op")
    found: list[str] = []

    menu = page.locator("details.quick-search")
    menu.locator("summary").click()
    sync_api.expect(menu.get_by_text("Temporary card", exact=True)).to_be_visible()
    found += at_each_width(page, "Quick search menu open")
    menu.get_by_role("button", name="Request temporary cards").click()
    sync_api.expect(page.locator("h1")).to_have_text("Request temporary cards")
    page.get_by_label("Amount").fill("2")
    found += at_each_width(page, "Request temporary cards")
    page.get_by_role("button", name="Next").click()
    sync_api.expect(page.locator("h1")).to_have_text("Request temporary cards: completed")
    sync_api.expect(page.locator("table.process-changes tbody tr")).to_have_count(2)
    assert card_states(services) == {"TC-000001": "requested", "TC-000002": "requested"}

    # By keyboard: the menu opens with Enter, its button is reached with Tab.
    page.goto(f"{live_url}/batch-orders")
    page.locator("details.quick-search summary").focus()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    sync_api.expect(page.get_by_role("button", name="Request temporary cards")).to_be_focused()

    with unit_of_work(services.sessions) as session:
        add_requested_cards(session, 1, "Test Organisation")
        session.execute(update(Card).where(Card.number == "TC-000003")
                        .values(state="unassigned", valid_until=utcnow() + timedelta(days=14)))
    page.goto(f"{live_url}/cards/TC-000003")
    found += at_each_width(page, "Card page with its processes")
    page.get_by_role("button", name="Lock temporary card").click()
    sync_api.expect(page.locator("h1")).to_have_text("Lock temporary card")
    sync_api.expect(page.locator(".breadcrumb")).to_contain_text("card TC-000003")
    page.get_by_label("Reason").fill("Reported stolen")
    found += at_each_width(page, "Lock temporary card")
    page.get_by_role("button", name="Next").click()
    sync_api.expect(page.locator("h1")).to_have_text("Lock temporary card: completed")
    page.get_by_role("link", name="TC-000003").click()
    sync_api.expect(page.locator(".state")).to_have_text("locked")
    sync_api.expect(page.locator("table.history")).to_contain_text("Locked: Reported stolen")
    found += at_each_width(page, "Card page, locked")
    assert found == [], "\n".join(found)
