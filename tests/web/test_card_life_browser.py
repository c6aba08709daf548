"""The temporary card's whole life in headless Chromium, with the real BPMN files: request three
cards, issue them in a batch order, assign one to an imported holder and open its PIN letter
(whose PIN opens the card), withdraw it (re-encoded), assign it to a second holder (a fresh PIN;
the old one no longer opens the card), lock it; the card's history shows every step in order.
Screenshots of the new pages at 1280 and 390 px land in the test's folder."""

from __future__ import annotations

import re

import pypdfium2
import pytest
from click.testing import CliRunner
from playwright import sync_api

from engine import bootstrap
from engine.cli import main
from tasks.cardsdk.ca import LocalCA, ca_folder
from tasks.cardsdk.custody import Custody, load_or_create_key
from tasks.cardsdk.encoder import Encoder
from tasks.cardsdk.piv import profiles
from tasks.cardsdk.printer import SpoolPrinter
from tasks.cardsdk.station import Station
from tests.conftest import start_services
from tests.web.conftest import PASSWORD
from tests.web.test_accessibility import problems
from tests.web.test_assign_withdraw import PROFILE, RecordingStock, pin_opens

PIN_LINE = re.compile(r"^PIN\r?\n([0-9]{6,8})\r?$", re.MULTILINE)
HOLDERS = ("identifier,name,email,unit\n"
           "E1001,Ada Lovelace,ada@example.org,Engineering\n"
           "E1002,Grace Hopper,grace@example.org,Navy\n")
WIDTHS = (1280, 390)


@pytest.fixture
def stock() -> RecordingStock:
    return RecordingStock()


@pytest.fixture
def services(settings, stock):
    """The deployed product, encoding onto cards the test keeps."""
    start_services(settings).close()

    def station(sessions):
        ca = LocalCA(ca_folder(settings.instance_path), settings.ca_passphrase, sessions)
        encoder = Encoder(stock, ca, Custody(sessions, load_or_create_key(settings.instance_path)),
                          profiles.get(PROFILE))
        return Station(SpoolPrinter(), encoder, "recording")

    services = bootstrap.build_services(settings, station)
    yield services
    services.close()


def import_holders(settings, tmp_path) -> None:
    """``cardflow holders import`` as the admin runs it."""
    path = tmp_path / "holders.csv"
    path.write_text(HOLDERS)
    env = {"CARDFLOW_INSTANCE_PATH": str(settings.instance_path),
           "CARDFLOW_DATABASE_URL": settings.database_url}
    result = CliRunner().invoke(main, ["holders", "import", str(path)], env=env)
    assert result.exit_code == 0 and "2 holders added" in result.output, result.output


def shoot(page, folder, name: str) -> None:
    """The page at each width, whole; axe-core finds nothing serious on it, and on a phone it does
    not scroll sideways (the checks of test_accessibility, which these pages are not part of)."""
    found = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(folder / f"{name}-{width}.png"), full_page=True)
        found += problems(page, "operator", name, width)
    page.set_viewport_size({"width": 1280, "height": 900})
    assert found == []


def menu(page, name: str) -> None:
    """Follow a link of the console's main menu."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True).click()


def open_card(page, number: str, status: str) -> None:
    """SEARCH > Temporary card, Status, card number, Search; open the card."""
    menu(page, "SEARCH")
    page.get_by_label("Object type").select_option("card")
    page.get_by_label("Status").select_option(status)
    page.get_by_label("Card number").fill(number)
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name=number).click()
    sync_api.expect(page.locator("h1")).to_have_text(f"Card {number}")


def assign(page, number: str, holder: str, shots=None) -> str:
    """Assign temporary card to ``holder``, print its PIN letter; the letter's PIN. With ``shots``
    (a folder) the two steps are photographed there."""
    expect, heading = sync_api.expect, page.locator("h1")
    open_card(page, number, "unassigned")
    page.get_by_role("button", name="Assign temporary card").click()
    expect(heading).to_have_text("Select holder")
    page.get_by_label("Holder", exact=True).fill(holder.split()[0])
    page.get_by_role("button", name="Search").click()
    page.get_by_label(f"Select {holder}", exact=False).check()
    if shots:
        shoot(page, shots, "select-holder")
    page.get_by_role("button", name="Next").click()
    expect(heading).to_have_text("PIN letter")
    if shots:
        shoot(page, shots, "pin-letter")
    letters: list[bytes] = []

    def keep(route) -> None:
        """Let the letter through to the new tab, keeping a copy of what the server sent."""
        response = route.fetch()
        assert response.status == 200 and response.headers["content-type"] == "application/pdf"
        letters.append(response.body())
        route.fulfill(response=response)

    page.context.route("**/pin-letter", keep)
    with page.context.expect_page():
        page.get_by_role("button", name="Print PIN letter").click()
    page.context.unroute("**/pin-letter")
    text = pypdfium2.PdfDocument(letters[0])[0].get_textpage().get_text_range()
    assert number in text and holder in text
    for other in page.context.pages[1:]:
        other.close()
    page.reload()
    expect(page.get_by_text("The PIN letter was printed on")).to_be_visible()
    page.get_by_role("button", name="Next").click()
    expect(heading).to_contain_text("completed")
    return PIN_LINE.search(text).group(1)


@pytest.mark.browser
def test_the_whole_life_of_a_temporary_card(live_url, chromium, make_user, settings, services, stock,
                                            tmp_path):
    make_user("op", "operator", PASSWORD)
    import_holders(settings, tmp_path)
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(30_000)
    expect, heading = sync_api.expect, page.locator("h1")
    page.goto(f"{live_url}/login")
    page.get_by_label("User name").fill("op")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    # Request 3 cards (Quick search > Temporary card > Request temporary cards).
    page.locator("summary", has_text="Quick search").click()
    page.get_by_role("button", name="Request temporary cards").click()
    expect(heading).to_have_text("Request temporary cards")
    page.get_by_label("Amount").fill("3")
    page.get_by_role("button", name="Next").click()

    # Issue them in a batch order.
    menu(page, "BATCH ORDERS")
    page.get_by_role("button", name="Issue multiple temporary cards").click()
    expect(heading).to_have_text("Search cards")
    for number in ("TC-000001", "TC-000002", "TC-000003"):
        page.get_by_label(f"Select card {number}").check()
    page.get_by_role("button", name="Issue multiple temporary cards").click()
    expect(heading).to_have_text("Selected cards")
    page.get_by_role("button", name="Next").click()
    expect(heading).to_have_text("Review production", timeout=90_000)
    page.get_by_label("Everything is OK").check()
    page.get_by_role("button", name="Complete order").first.click()
    expect(heading).to_have_text("Order completed", timeout=60_000)

    # SEARCH > Temporary card, Status Unassigned: the three cards, linked to their pages.
    menu(page, "SEARCH")
    page.get_by_label("Status").select_option("unassigned")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("3 cards match")).to_be_visible()
    shoot(page, tmp_path, "search-cards")

    # Assign TC-000002 to Ada; the PIN letter's PIN opens the card.
    first_pin = assign(page, "TC-000002", "Ada Lovelace", shots=tmp_path)
    [first_card] = stock.physical("TC-000002")
    assert pin_opens(first_card, first_pin)

    # The holder's page lists the card.
    menu(page, "SEARCH")
    page.get_by_label("Object type").select_option("holder")
    page.get_by_label("Holder", exact=True).fill("ada")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="Ada Lovelace").click()
    expect(page.get_by_role("cell", name="TC-000002")).to_be_visible()
    shoot(page, tmp_path, "holder")

    # Withdraw: the card is re-encoded before the process lets go of it.
    open_card(page, "TC-000002", "assigned")
    page.get_by_role("button", name="Withdraw temporary card").click()
    expect(heading).to_have_text("Withdraw temporary card")
    page.get_by_role("button", name="Next").click()
    expect(heading).to_contain_text("completed", timeout=90_000)

    # Assign it to Grace: a fresh PIN on a freshly encoded card; Ada's PIN no longer opens it.
    second_pin = assign(page, "TC-000002", "Grace Hopper")
    old_card, new_card = stock.physical("TC-000002")
    assert pin_opens(new_card, second_pin)
    assert second_pin == first_pin or not pin_opens(new_card, first_pin)

    # Lock it.
    open_card(page, "TC-000002", "assigned")
    page.get_by_role("button", name="Lock temporary card").click()
    expect(heading).to_have_text("Lock temporary card")
    page.get_by_label("Reason").fill("Lost by its holder")
    page.get_by_role("button", name="Next").click()
    expect(heading).to_contain_text("completed")

    # The card's history: every step, in order.
    open_card(page, "TC-000002", "locked")
    targets = page.locator("table.history").first.locator("tbody tr td:nth-child(3)").all_inner_texts()
    assert targets == ["requested", "unassigned", "assigned", "unassigned", "unassigned", "assigned",
                       "locked"]
    reasons = page.locator("table.history").first.locator("tbody tr td:nth-child(4)").all_inner_texts()
    assert "Assigned to Ada Lovelace (E1001)." in reasons and "Assigned to Grace Hopper (E1002)." in reasons
    assert first_pin not in page.content() and second_pin not in page.content()
    shoot(page, tmp_path, "card-history")
