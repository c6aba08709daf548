"""Start menus follow the current versions: a deploy that drops, relabels or moves a process's
declaration changes the console's buttons at once, a rollback brings them back; on SQLite and
PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import update

from engine import bootstrap
from engine.db import read_only, unit_of_work
from engine.start_menus import StartEntry, card_entries, start_entries
from engine.versions import rollback
from engine.web.app import create_app
from tasks.demo import add_requested_cards
from tasks.store import Card
from tests.web.conftest import PASSWORD, csrf_token

REPO = Path(__file__).resolve().parents[2]
LOCK = (REPO / "processes" / "TempCardsProcLock.bpmn").read_text()
DECLARED = '        <spiffworkflow:property name="label" value="Lock temporary card" />\n'


def entries(services, menu: str) -> dict[str, StartEntry]:
    """The entries of ``menu`` by process id."""
    with read_only(services.sessions) as session:
        return {entry.process_id: entry for entry in start_entries(session, menu)}


def deploy_lock(services, tmp_path: Path, text: str) -> list[str]:
    """Deploy ``text`` as the Lock process, as an admin's upload would."""
    path = tmp_path / "TempCardsProcLock.bpmn"
    path.write_text(text)
    return bootstrap.deploy(services, "admin", paths=[path])


@pytest.fixture
def operator(services, make_user):
    """An operator logged in to the console, and card TC-000001 unassigned."""
    with unit_of_work(services.sessions) as session:
        add_requested_cards(session, 1, "Test Organisation")
        session.execute(update(Card).values(state="unassigned"))
    make_user("op", "operator", PASSWORD)
    client = create_app(services=services).test_client()
    token = csrf_token(client.get("/login").get_data(as_text=True))
    login = {"name": "op", "password": PASSWORD, "csrf_token": token}
    assert client.post("/login", data=login).status_code == 303
    return client


def test_the_shipped_processes_declare_their_menus(services):
    assert entries(services, "batch-orders") == {"TempCardsBoProcIssueMultiple": StartEntry(
        "TempCardsBoProcIssueMultiple", "Issue multiple temporary cards")}
    assert entries(services, "quick-search")["TempCardsProcRequest"].label == "Request temporary cards"
    assert entries(services, "card")["TempCardsProcLock"] == StartEntry(
        "TempCardsProcLock", "Lock temporary card", ("assigned", "unassigned"))
    with read_only(services.sessions) as session:
        assert "TempCardsProcLock" in [entry.process_id for entry in card_entries(session, "assigned")]
        assert "TempCardsProcLock" not in [entry.process_id for entry in card_entries(session, "requested")]


def test_menus_appear_and_disappear_with_deploys(services, operator, tmp_path):
    def lock_button() -> bool:
        page = operator.get("/cards/TC-000001").get_data(as_text=True)
        return "/cards/TC-000001/start/TempCardsProcLock" in page

    assert lock_button()
    assert deploy_lock(services, tmp_path, LOCK.replace(DECLARED, "").replace(
        'value="card"', 'value="quick-search"').replace(
        '        <spiffworkflow:property name="cardStates" value="assigned,unassigned" />\n', "")) == [
        "TempCardsProcLock v2 deployed"]
    assert "TempCardsProcLock" not in entries(services, "card")
    assert entries(services, "quick-search")["TempCardsProcLock"].label == "Lock temporary card"
    assert not lock_button()
    token = csrf_token(operator.get("/cards/TC-000001").get_data(as_text=True))
    refused = operator.post("/cards/TC-000001/start/TempCardsProcLock", data={"csrf_token": token})
    assert refused.status_code == 404

    relabelled = LOCK.replace('value="Lock temporary card"', 'value="Lock card"')
    assert deploy_lock(services, tmp_path, relabelled) == ["TempCardsProcLock v3 deployed"]
    assert entries(services, "card")["TempCardsProcLock"].label == "Lock card"
    assert "TempCardsProcLock" not in entries(services, "quick-search")
    assert ">Lock card</button>" in operator.get("/cards/TC-000001").get_data(as_text=True)

    with unit_of_work(services.sessions) as session:
        rollback(session, "process", "TempCardsProcLock", 1, "admin")
    assert entries(services, "card")["TempCardsProcLock"].label == "Lock temporary card"
    assert lock_button()
