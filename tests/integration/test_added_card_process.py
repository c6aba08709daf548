"""A new card process with files only: "Extend temporary card" (a BPMN file in processes/, its form
in forms/) and one handler published the way handlers are; after deploy it is on the card page of
a card in a state it declares, and it runs. engine/ knows nothing of it. SQLite and PostgreSQL."""

from __future__ import annotations

import re
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from engine import bootstrap
from engine.db import unit_of_work
from engine.deploy_errors import DeployError
from engine.web.app import create_app
from tasks.demo import add_requested_cards
from tasks.store import Card, CardEvent, utcnow
from tests.integration.extend_card_handler import build_extend_handlers
from tests.web.conftest import PASSWORD, TASK_FORM, csrf_token

REPO = Path(__file__).resolve().parents[2]
CARD_PAGE = "/cards/TC-000001"
SCHEMA = """{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "Extend temporary card",
  "type": "object",
  "properties": {"days": {"type": "integer", "title": "Days", "minimum": 1, "maximum": 30}},
  "required": ["days"],
  "additionalProperties": false
}"""
UI = """{"ui:order": ["days"], "ui:actions": [{"name": "next", "label": "Next", "validate": true},
                                            {"name": "cancel", "label": "Cancel", "validate": false}]}"""


def extend_process() -> str:
    """The Extend process, written the way an admin derives one from Lock in a modeler."""
    text = (REPO / "processes" / "TempCardsProcLock.bpmn").read_text()
    renames = [
        ("TempCardsProcLock", "TempCardsProcExtend"), ("Lock temporary card", "Extend temporary card"),
        ("lock_card.", "extend_card."),
        ('id="card_lock" resultVariable="locking"', 'id="card_extend" resultVariable="extension"'),
        ('id="reason" type="str" value="reason"', 'id="days" type="int" value="days"'),
        ("Lock card and revoke certificates", "Extend validity"), ("Card locked", "Validity extended"),
        ("Not locked", "Not extended"), ("Lock started", "Extend started"),
        ('value="assigned,unassigned"', 'value="unassigned"')]
    for old, new in renames:
        assert old in text, old
        text = text.replace(old, new)
    documentation = "<bpmn:documentation>Extend the validity of an unassigned card.</bpmn:documentation>"
    return re.sub(r"<bpmn:documentation>.*?</bpmn:documentation>", documentation, text, flags=re.S)


@pytest.fixture
def source(services, tmp_path) -> Path:
    """A copy of the source folders that services deploy from (CARDFLOW_SOURCE_PATH)."""
    root = tmp_path / "source"
    for folder in ("processes", "forms", "options"):
        shutil.copytree(REPO / folder, root / folder)
    services.settings.source_path = root
    return root


@pytest.fixture
def operator(services, make_user):
    """An operator logged in, and card TC-000001 unassigned, valid for 14 days."""
    with unit_of_work(services.sessions) as session:
        add_requested_cards(session, 1, "Test Organisation")
        session.execute(update(Card).values(state="unassigned", valid_until=utcnow() + timedelta(days=14)))
    make_user("op", "operator", PASSWORD)
    client = create_app(services=services).test_client()
    token = csrf_token(client.get("/login").get_data(as_text=True))
    login = {"name": "op", "password": PASSWORD, "csrf_token": token}
    assert client.post("/login", data=login).status_code == 303
    return client


def test_a_process_added_with_files_only_appears_in_the_card_menu(services, source, operator):
    assert "Extend temporary card" not in operator.get(CARD_PAGE).get_data(as_text=True)
    (source / "processes" / "TempCardsProcExtend.bpmn").write_text(extend_process())
    (source / "forms" / "extend_card.schema.json").write_text(SCHEMA)
    (source / "forms" / "extend_card.uischema.json").write_text(UI)

    # Its step names a handler nobody published yet: deploy refuses it, and nothing is deployed.
    with pytest.raises(DeployError, match="unknown service operator 'card_extend'"):
        bootstrap.deploy(services, "cardflow deploy")
    assert "Extend temporary card" not in operator.get(CARD_PAGE).get_data(as_text=True)

    for name, handler in build_extend_handlers(services.sessions).items():
        services.registry.register(name, handler)
    assert "TempCardsProcExtend v1 deployed" in bootstrap.deploy(services, "cardflow deploy")
    page = operator.get(CARD_PAGE).get_data(as_text=True)
    assert 'action="/cards/TC-000001/start/TempCardsProcExtend"' in page
    assert ">Extend temporary card</button>" in page

    started = operator.post("/cards/TC-000001/start/TempCardsProcExtend",
                            data={"csrf_token": csrf_token(page)})
    instance_id = started.headers["Location"].rsplit("/", 1)[-1]
    assert services.runner.wait(instance_id, timeout=60)
    step = operator.get(f"/orders/{instance_id}").get_data(as_text=True)
    assert "<h1>Extend temporary card</h1>" in step
    post = TASK_FORM.search(step).group(1).replace("&amp;", "&")
    extended = operator.post(post, data={"action": "next", "days": "7", "csrf_token": csrf_token(step)})
    assert extended.status_code == 303
    assert services.runner.wait(instance_id, timeout=60)
    with unit_of_work(services.sessions) as session:
        card = session.scalar(select(Card))
        event = session.scalars(select(CardEvent).order_by(CardEvent.id.desc())).first()
        assert card.state == "unassigned"
        reason = f"Valid 7 days longer, until {card.valid_until:%Y-%m-%d}."
        assert (event.process_id, event.reason) == ("TempCardsProcExtend", reason)
        assert card.valid_until.date() == (utcnow() + timedelta(days=21)).date()
    # It starts only on the states it declares: an assigned card does not offer it.
    with unit_of_work(services.sessions) as session:
        session.execute(update(Card).values(state="assigned"))
    assert "/start/TempCardsProcExtend" not in operator.get(CARD_PAGE).get_data(as_text=True)
