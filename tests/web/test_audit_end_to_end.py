"""End to end in headless Chromium: an auditor sees two orders, one started before and one after
the admin's "Supervisor approval" step, with their versions and paths; filters and exports the
trail; and ``cardflow audit verify`` holds until the database is tampered with."""

from __future__ import annotations

import csv
import io
import re
import shutil
import sqlite3

import pytest
from click.testing import CliRunner
from playwright.sync_api import Page, expect
from sqlalchemy import text

from engine import bootstrap
from engine.cli import main
from engine.db import unit_of_work
from tests.integration.flow import order_id, select_and_issue, settle, submit
from tests.integration.test_process_edit import insert_approval
from tests.web.conftest import PASSWORD

PROCESS = "TempCardsBoProcIssueMultiple"


def run_order(services, cards: list[int], approve: bool) -> tuple[str, int]:
    """An operator's order through the engine: select, produce (approving first when asked), complete."""
    instance_id = services.runtime.start(PROCESS, "op")
    task = select_and_issue(services, instance_id, settle(services, instance_id), cards)
    task = submit(services, instance_id, task, {"action": "next"})
    if approve:
        assert task.title == "Supervisor approval"
        task = submit(services, instance_id, task, {"action": "approve", "comment": "fine"})
    assert submit(services, instance_id, task, {"action": "complete", "confirm_ok": True}) is None
    return instance_id, order_id(services, instance_id)


def verify(services, database_url: str) -> tuple[int, str]:
    """``cardflow audit verify`` of ``database_url`` with the instance's key: exit code and output."""
    env = {"CARDFLOW_INSTANCE_PATH": str(services.settings.instance_path),
           "CARDFLOW_DATABASE_URL": database_url}
    result = CliRunner().invoke(main, ["audit", "verify"], env=env)
    return result.exit_code, result.output


def diagram_marks(page: Page) -> dict[str, list[str]]:
    """Element id -> path markers drawn on the order's diagram."""
    return page.evaluate("""() => Object.fromEntries([...document.querySelectorAll(
        "#diagram-canvas .djs-element[class*='path-']")].map((node) => [node.dataset.elementId,
        [...node.classList].filter((name) => name.startsWith("path-"))]))""")


@pytest.mark.browser
def test_auditor_traces_two_orders_and_proves_the_trail(live_url, chromium, make_user, services, tmp_path,
                                                        requested_cards):
    make_user("aud", "auditor", PASSWORD)
    first_instance, first = run_order(services, [1], approve=False)

    # The admin's change: "Supervisor approval" before production, deployed as version 2.
    source = tmp_path / "source"
    for folder in ("processes", "forms", "options"):
        shutil.copytree(services.settings.source_path / folder, source / folder)
    bpmn = source / "processes" / f"{PROCESS}.bpmn"
    bpmn.write_bytes(insert_approval(bpmn.read_bytes()))
    services.settings.source_path = source
    assert f"{PROCESS} v2 deployed" in bootstrap.deploy(services, "adm")
    _second_instance, second = run_order(services, [2], approve=True)

    page = chromium.new_page(viewport={"width": 1280, "height": 1000})
    page.set_default_timeout(30_000)
    page.goto(f"{live_url}/login")
    page.get_by_label("User name").fill("aud")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("h1")).to_have_text("Audit trail")

    # Both orders, each with its version and its path on its own diagram.
    for number, version, approved in ((first, 1, False), (second, 2, True)):
        page.goto(f"{live_url}/audit/orders/{number}")
        expect(page.locator("h1")).to_have_text(f"Order {number}")
        expect(page.locator("dl.order-facts")).to_contain_text(f"version {version}")
        expect(page.locator("#diagram-status")).not_to_contain_text("Loading")
        marks = diagram_marks(page)
        assert "path-completed" in marks["Activity_Produce"] and "path-completed" in marks["Activity_Review"]
        assert ("Activity_SupervisorApproval" in marks) is approved
        assert "path-completed" in marks.get("Activity_Complete", [])

    # The trail filtered by card, then by user; the filtered view exported as CSV.
    page.goto(f"{live_url}/audit/")
    page.get_by_label("Card number").fill("TC-000002")
    page.get_by_role("button", name="Filter").click()
    cards = page.locator("table.trail tbody td[data-label='Card']")
    expect(cards.first).to_have_text("TC-000002")
    assert set(cards.all_inner_texts()) == {"TC-000002"}
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    rows = list(csv.DictReader(io.StringIO(download.value.path().read_text())))
    assert rows and {row["card"] for row in rows} == {"TC-000002"}
    assert {"card state changed", "certificate issued"} <= {row["action"] for row in rows}

    page.goto(f"{live_url}/audit/")
    page.get_by_label("User", exact=True).fill("aud")
    page.get_by_role("button", name="Filter").click()
    users = page.locator("table.trail tbody td[data-label='User']")
    expect(users.first).to_have_text("aud")
    assert set(users.all_inner_texts()) == {"aud"}
    assert first_instance  # the first order was started before the change, on version 1

    # The chain verifies; each kind of tampering is named by the entry where it shows.
    code, output = verify(services, services.settings.database_url)
    assert code == 0 and "OK" in output, output
    with unit_of_work(services.sessions) as session:
        last = session.scalar(text("SELECT max(id) FROM audit_events"))
        head = session.scalar(text("SELECT max(entry_id) FROM audit_heads"))
    middle = last // 2
    cases = {
        "edit": ([f"UPDATE audit_events SET actor = 'mallory' WHERE id = {middle}"], f"entry {middle}"),
        "delete": ([f"DELETE FROM audit_events WHERE id = {middle}"], f"entry {middle + 1}"),
        "swap": ([f"UPDATE audit_events SET id = -1 WHERE id = {middle}",
                  f"UPDATE audit_events SET id = {middle} WHERE id = {middle + 1}",
                  f"UPDATE audit_events SET id = {middle + 1} WHERE id = -1"], f"entry {middle}"),
        "truncate": ([f"DELETE FROM audit_events WHERE id >= {head - 2}"], f"entry {head}"),
    }
    for case, (statements, named) in cases.items():
        code, output = verify(services, tampered_copy(services, tmp_path / f"{case}.db", statements))
        assert code != 0 and re.search(rf"\b{named}\b", output), f"{case}: {output}"


def tampered_copy(services, target, statements: list[str]) -> str:
    """A copy of the test's SQLite database with ``statements`` run on it: its URL."""
    source = sqlite3.connect(services.settings.database_url.removeprefix("sqlite:///"))
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)
        for statement in statements:
            copy.execute(statement)
        copy.commit()
    finally:
        source.close()
        copy.close()
    return f"sqlite:///{target}"
