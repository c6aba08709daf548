"""In headless Chromium: another operator cannot open an order's card preview; a card's history,
found by the start of its number, shows its spoiled physical card; both pages pass axe-core.

CARDFLOW_SCREENSHOTS=folder saves the lookup and history pages at each width there, to look at.
"""

from __future__ import annotations

import re

import pytest
from playwright import sync_api

from tests.web.conftest import PASSWORD
from tests.web.console_steps import title
from tests.web.test_accessibility import WIDTHS, problems
from tests.web.test_card_history import MISPRINT


def logged_in(chromium: sync_api.Browser, live_url: str, name: str) -> sync_api.Page:
    """A new browser window, logged in as ``name``."""
    page = chromium.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{live_url}/login")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    sync_api.expect(page.get_by_role("button", name="Log out")).to_be_visible()
    return page


@pytest.mark.browser
def test_another_operator_gets_no_preview(live_url, chromium, make_user, reviewing):
    op, instance_id = reviewing
    preview = re.search(r'<img src="(/spool/[^"]+\.png)"', op.order_page(instance_id)).group(1)
    make_user("op2", "operator", PASSWORD)
    owner = logged_in(chromium, live_url, "op")
    owner.goto(f"{live_url}/orders/{instance_id}")
    sync_api.expect(owner.locator("h1")).to_have_text("Review production")
    image = owner.locator(f'img[src="{preview}"]')
    sync_api.expect(image).to_be_visible()
    assert image.evaluate("(img) => img.complete && img.naturalWidth") > 0

    other = logged_in(chromium, live_url, "op2")
    response = other.goto(f"{live_url}{preview}")
    assert response.status == 403
    sync_api.expect(other.locator("h1")).to_have_text("Not your order")
    sync_api.expect(other.get_by_text("This order belongs to op: only op can open it")).to_be_visible()
    response = other.goto(f"{live_url}/orders/{instance_id}")
    assert response.status == 403
    sync_api.expect(other.get_by_text("This order belongs to op")).to_be_visible()


@pytest.mark.browser
def test_card_history_shows_the_spoiled_card(live_url, chromium, make_user, reviewing):
    op, instance_id = reviewing
    assert op.submit(instance_id, MISPRINT).status_code == 303
    assert title(op.order_page(instance_id)) == "Review production"
    make_user("aud", "auditor", PASSWORD)
    page = logged_in(chromium, live_url, "aud")
    found: list[str] = []

    page.get_by_role("link", name="CARDS").click()
    page.get_by_label("Card number").fill("tc-00001")
    page.get_by_role("button", name="Show history").click()
    sync_api.expect(page.get_by_role("status")).to_contain_text("3 cards start with TC-00001")
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        found += problems(page, "auditor", "Card lookup, matches", width)

    page.set_viewport_size({"width": 1280, "height": 900})
    page.get_by_role("link", name="TC-000010").click()
    sync_api.expect(page.locator("h1")).to_have_text("Card TC-000010")
    spoiled = page.locator("table.attempts tr.spoiled")
    sync_api.expect(spoiled).to_have_count(1)
    sync_api.expect(spoiled).to_contain_text("smudged photo")
    sync_api.expect(spoiled.get_by_role("link", name="Order 1")).to_have_attribute("href", "/audit/orders/1")
    revoked = page.locator("table.certificates tr.revoked")
    sync_api.expect(revoked).to_have_count(2)  # the spoiled card's PIV and Card Authentication
    for row in revoked.all():
        sync_api.expect(row).to_contain_text("smudged photo")
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        found += problems(page, "auditor", "Card history, spoiled card", width)

    page.goto(f"{live_url}/cards?number=%3Cb%3Ex%3C%2Fb%3E")
    sync_api.expect(page.locator("#error-summary")).to_be_focused()
    sync_api.expect(page.get_by_label("Card number")).to_have_value("<b>x</b>")
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        found += problems(page, "auditor", "Card lookup, a wrong number", width)
    assert found == [], "\n".join(found)
