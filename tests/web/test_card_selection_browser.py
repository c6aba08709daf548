"""The selection across Search pages in headless Chromium, on a wide screen and on a phone: ticks
on page 1 survive going to page 2, "Select this page" adds page 2, the page says "N selected" and
lists them, Clear empties it, and Issue reserves exactly what is selected then."""

from __future__ import annotations

import pytest
from playwright import sync_api
from sqlalchemy import select

from engine.db import unit_of_work
from tasks.demo import add_requested_cards
from tasks.store import Card, Reservation
from tests.web.conftest import PASSWORD


def numbers_listed(page: sync_api.Page) -> list[str]:
    """The card numbers of the result table, top to bottom."""
    return page.locator("table.cards tbody tr td:nth-child(2)").all_inner_texts()


@pytest.mark.browser
@pytest.mark.parametrize("width", [1280, 390])
def test_the_selection_holds_across_pages_and_issue_reserves_exactly_it(live_url, chromium, make_user,
                                                                        services, width):
    with unit_of_work(services.sessions) as session:
        add_requested_cards(session, 62, "Test Organisation")
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
    selection = page.locator("#picker-selection [role=status]")
    expect(selection).to_contain_text("0 selected")

    first = numbers_listed(page)
    assert len(first) == 50
    for number in first[:2]:
        page.get_by_label(f"Select card {number}").check()
    page.get_by_role("button", name="Next page").click()
    expect(selection).to_have_text("2 selected")
    second = numbers_listed(page)
    assert len(second) == 12 and not set(second) & set(first)
    page.get_by_label(f"Select card {second[0]}").check()
    page.get_by_role("button", name="Select this page").click()
    expect(selection).to_have_text("14 selected")
    for number in second:
        expect(page.get_by_label(f"Select card {number}")).to_be_checked()

    page.get_by_text("Show the selected cards").click()
    listed = page.locator("details.selected-cards li").all_inner_texts()
    assert listed == sorted(first[:2] + second)

    page.get_by_role("button", name="Clear selection").click()
    expect(selection).to_contain_text("0 selected")
    expect(page.get_by_label(f"Select card {second[0]}")).not_to_be_checked()
    page.get_by_label(f"Select card {second[3]}").check()
    page.get_by_role("button", name="Previous page").click()
    expect(selection).to_have_text("1 selected")
    expect(page.get_by_label(f"Select card {first[0]}")).not_to_be_checked()
    page.get_by_label(f"Select card {first[7]}").check()
    page.get_by_role("button", name="Issue multiple temporary cards").click()

    expect(page.locator("h1")).to_have_text("Selected cards")
    expect(page.get_by_text("2 cards reserved for this order")).to_be_visible()
    with unit_of_work(services.sessions) as session:
        reserved = sorted(session.scalars(select(Card.number)
                                          .join(Reservation, Reservation.card_id == Card.id)))
    assert reserved == sorted([first[7], second[3]])
