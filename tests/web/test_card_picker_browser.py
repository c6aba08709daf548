"""The card picker's errors in headless Chromium: the summary at the top takes the focus, and only
the field at fault is marked, on a wide screen and on a phone."""

from __future__ import annotations

import re

import pytest
from playwright import sync_api

from tests.web.conftest import PASSWORD


@pytest.mark.browser
@pytest.mark.parametrize("width", [1280, 390])
def test_the_error_summary_is_focused_and_only_the_wrong_field_is_marked(live_url, chromium, make_user,
                                                                        requested_cards, width):
    make_user("op", "operator", PASSWORD)
    page = chromium.new_page(viewport={"width": width, "height": 800})
    page.set_default_timeout(30_000)
    expect = sync_api.expect
    page.goto(f"{live_url}/login")
    page.get_by_label("User name").fill("op")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="BATCH ORDERS").click()
    page.get_by_role("button", name="Issue multiple temporary cards").click()
    expect(page.locator("h1")).to_have_text("Search cards")

    page.get_by_label("Card number").fill("tc-00001")
    page.get_by_label("Requested from").fill("03/04/2026")
    page.get_by_label("Requested from").press("Enter")
    summary = page.get_by_role("alert").filter(has_text="Please correct this")
    expect(summary).to_contain_text("Requested from: 03/04/2026 could be 2026-04-03 or 2026-03-04")
    assert page.evaluate("document.activeElement.id") == "picker-problems"
    invalid = page.eval_on_selector_all("[aria-invalid=true]", "nodes => nodes.map(n => n.id)")
    assert invalid == ["search-from"]
    field = page.get_by_label("Requested from")
    expect(field).to_have_accessible_description(re.compile(
        r"Requested from: 03/04/2026 could be 2026-04-03 or 2026-03-04; enter a date as YYYY-MM-DD"))
    assert summary.bounding_box()["y"] < field.bounding_box()["y"], "the summary is not above the fields"
    assert summary.bounding_box()["y"] < 800, "the summary is not in view when the page loads"
    expect(page.get_by_label("Card number")).to_have_value("TC-00001")
    expect(page.get_by_label("Card number")).not_to_have_attribute("aria-invalid", "true")

    field.fill("31.03.2026")
    page.get_by_label("Requested to").fill("20260331")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.get_by_label("Requested from")).to_have_value("2026-03-31")
    expect(page.get_by_label("Requested to")).to_have_value("2026-03-31")
    expect(page.locator(".error-summary")).to_have_count(0)
    assert page.eval_on_selector_all("[aria-invalid=true]", "nodes => nodes.length") == 0
