"""Current versions, rollback, the form library, and what counts as new content."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from engine.definitions import DeployError
from engine.deployment import deploy_all, deploy_files
from engine.store import AuditEvent
from engine.versions import (
    VersionError,
    current_definition,
    current_form_names,
    current_options,
    list_versions,
    rollback,
)
from tasks.options import TEMP_CARDS_OPTIONS, validate_temp_card_options

VALIDATORS = {TEMP_CARDS_OPTIONS: validate_temp_card_options}
PROCESS = "TempCardsBoProcIssueMultiple"


def test_rollback_makes_an_older_version_current_and_is_audited(session, project, operators):
    deploy_all(session, project, operators, VALIDATORS, "alice")
    script = project / "options" / TEMP_CARDS_OPTIONS
    script.write_text(script.read_text().replace("pin_length = 6", "pin_length = 8"))
    deploy_all(session, project, operators, VALIDATORS, "alice")
    assert current_options(session, TEMP_CARDS_OPTIONS).values["pin_length"] == 8

    change = session.scalars(select(AuditEvent).where(AuditEvent.action == "deploy")
                             .order_by(AuditEvent.id.desc())).first()
    assert change.detail["previous_version"] == 1 and change.detail["values"]["pin_length"] == 8

    rollback(session, "option", TEMP_CARDS_OPTIONS, 1, "bob")
    assert current_options(session, TEMP_CARDS_OPTIONS).version == 1
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "rollback")).one()
    assert event.actor == "bob" and event.detail["from_version"] == 2 and event.detail["to_version"] == 1
    listed = {info.version: info.current for info in list_versions(session, "option", TEMP_CARDS_OPTIONS)}
    assert listed == {2: False, 1: True}
    # Deploying the content of version 2 again makes version 3: what was deployed last is current.
    lines = deploy_all(session, project, operators, VALIDATORS, "alice")
    assert lines[-1] == "TempCardsScriptOptions v3 deployed"


def test_rollback_refuses_unknown_and_current_versions(session, project, operators):
    deploy_all(session, project, operators, VALIDATORS, "alice")
    with pytest.raises(VersionError, match="no process TempCardsBoProcIssueMultiple version 7"):
        rollback(session, "process", PROCESS, 7, "bob")
    with pytest.raises(VersionError, match="already the current version"):
        rollback(session, "process", PROCESS, 1, "bob")
    with pytest.raises(VersionError, match="Unknown kind"):
        rollback(session, "script", PROCESS, 1, "bob")


def test_reformatted_xml_is_nothing_new_but_a_moved_shape_is(session, project, operators):
    deploy_all(session, project, operators, VALIDATORS, "alice")
    bpmn = project / "processes" / f"{PROCESS}.bpmn"
    original = bpmn.read_text()
    # What a modeler's save does without an edit: other whitespace, a comment, numbers as floats.
    bpmn.write_text(original.replace("<bpmn:process ", "<!-- saved by a modeler -->\n  <bpmn:process ", 1)
                    .replace('width="100"', 'width="100.0"'))
    assert f"{PROCESS} unchanged (v1)" in deploy_all(session, project, operators, VALIDATORS, "alice")
    bpmn.write_text(original.replace('x="250" y="160"', 'x="260" y="160"', 1))
    assert f"{PROCESS} v2 deployed" in deploy_all(session, project, operators, VALIDATORS, "alice")


def test_forms_are_a_library_that_later_processes_bind_to(session, project, operators):
    deploy_all(session, project, operators, VALIDATORS, "alice")
    assert "search_cards.schema.json" in current_form_names(session)
    # A process deployed on its own binds the deployed forms.
    bpmn = project / "processes" / f"{PROCESS}.bpmn"
    bpmn.write_text(bpmn.read_text().replace('x="250" y="160"', 'x="260" y="160"', 1))
    assert deploy_files(session, [bpmn], operators, VALIDATORS, "alice") == [f"{PROCESS} v2 deployed"]
    assert "search_cards.schema.json" in current_definition(session, PROCESS).forms


@pytest.mark.parametrize("name", ["évil.schema.json", "evil.json", "a b.schema.json", ".x.schema.json"])
def test_a_form_file_name_must_be_plain(session, project, operators, name, tmp_path):
    path = tmp_path / "upload" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"type": "object"}')
    with pytest.raises(DeployError, match="a form file is named"):
        deploy_files(session, [path], operators, VALIDATORS, "alice")
    assert current_form_names(session) == []
