"""Deploying processes and option scripts: versions, idempotence, and refusals that store nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.definitions import (
    DeployError,
    current_definition,
    current_options,
    deploy_options,
    deploy_process,
    validate_process,
)
from engine.deployment import deploy_all
from engine.store import AuditEvent, Definition, OptionVersion
from tasks.options import TEMP_CARDS_OPTIONS, validate_temp_card_options

VALIDATORS = {TEMP_CARDS_OPTIONS: validate_temp_card_options}
APPROVAL_TASK = """
    <bpmn:userTask id="Activity_Approve" name="Approve order">
      <bpmn:extensionElements>
        <spiffworkflow:properties>
          <spiffworkflow:property name="formJsonSchemaFilename" value="search_cards.schema.json" />
        </spiffworkflow:properties>
      </bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="Flow_ApproveToOpenOrder"
                       sourceRef="Activity_Approve" targetRef="Activity_OpenOrder" />
  </bpmn:process>"""
APPROVAL_DI = """
      <bpmndi:BPMNShape id="Activity_Approve_di" bpmnElement="Activity_Approve">
        <dc:Bounds x="250" y="300" width="100" height="80" />
      </bpmndi:BPMNShape>
      <bpmndi:BPMNEdge id="Flow_ApproveToOpenOrder_di" bpmnElement="Flow_ApproveToOpenOrder">
        <di:waypoint x="300" y="300" />
        <di:waypoint x="300" y="240" />
      </bpmndi:BPMNEdge>
    </bpmndi:BPMNPlane>"""


def edited(source: Path, folder: Path, *replacements: tuple[str, str]) -> Path:
    """A copy of ``source`` in ``folder`` with each (old, new) text replaced exactly once."""
    text = source.read_text()
    for old, new in replacements:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    folder.mkdir(exist_ok=True)
    target = folder / source.name
    target.write_text(text)
    return target


def line_of(path: Path, marker: str) -> int:
    """The 1-based line of the first occurrence of ``marker`` in a file."""
    return next(number for number, line in enumerate(path.read_text().splitlines(), 1) if marker in line)


def count(session: Session, model: type) -> int:
    """Rows in a table."""
    return session.scalar(select(func.count()).select_from(model))


def test_the_shipped_process_validates_with_its_forms(real_bpmn, forms_dir, operators):
    validated = validate_process(real_bpmn, forms_dir, operators)
    assert validated.process_id == "TempCardsBoProcIssueMultiple"
    assert validated.name == "Issue multiple temporary cards"
    assert sorted(validated.forms) == sorted(
        f"{stem}.{kind}.json" for stem in ("search_cards", "selected_cards", "review_production")
        for kind in ("schema", "uischema")
    )
    assert "TempCardsBoProcIssueMultiple" in json.loads(validated.spec_json)["spec"]["name"]


def test_first_deploy_is_v1_and_is_audited(session, real_bpmn, forms_dir, operators):
    definition, created = deploy_process(session, validate_process(real_bpmn, forms_dir, operators), "alice")
    assert created and definition.version == 1 and definition.deployed_by == "alice"
    [event] = session.scalars(select(AuditEvent)).all()
    assert event.action == "deploy" and event.actor == "alice"
    assert event.detail == {"kind": "process", "name": "TempCardsBoProcIssueMultiple", "version": 1,
                            "previous_version": None,
                            "content_hash": definition.content_hash}


def test_redeploying_unchanged_content_stores_nothing(session, real_bpmn, forms_dir, operators):
    first, _ = deploy_process(session, validate_process(real_bpmn, forms_dir, operators), "alice")
    again, created = deploy_process(session, validate_process(real_bpmn, forms_dir, operators), "bob")
    assert not created and again.id == first.id
    assert count(session, Definition) == 1 and count(session, AuditEvent) == 1


def test_an_added_user_task_deploys_as_v2(session, tmp_path, real_bpmn, forms_dir, operators):
    deploy_process(session, validate_process(real_bpmn, forms_dir, operators), "alice")
    changed = edited(
        real_bpmn, tmp_path / "edited",
        ('sourceRef="StartEvent_Start" targetRef="Activity_OpenOrder"',
         'sourceRef="StartEvent_Start" targetRef="Activity_Approve"'),
        ("\n  </bpmn:process>", APPROVAL_TASK),
        ("\n    </bpmndi:BPMNPlane>", APPROVAL_DI),
    )
    definition, created = deploy_process(session, validate_process(changed, forms_dir, operators), "alice")
    assert created and definition.version == 2
    assert current_definition(session, "TempCardsBoProcIssueMultiple").version == 2
    assert "Activity_Approve" in json.loads(definition.spec_json)["spec"]["task_specs"]


def test_a_changed_form_makes_a_new_version(session, real_bpmn, forms_dir, operators):
    deploy_process(session, validate_process(real_bpmn, forms_dir, operators), "alice")
    (forms_dir / "review_production.schema.json").write_text('{"type": "object", "required": []}')
    definition, created = deploy_process(session, validate_process(real_bpmn, forms_dir, operators), "alice")
    assert created and definition.version == 2
    assert definition.forms["review_production.schema.json"] == '{"type": "object", "required": []}'


def unknown_operator(path: Path, folder: Path, forms_dir: Path) -> tuple[Path, str, str]:
    """The real file with an operator nobody published."""
    return (edited(path, folder, ('id="cards_repeat"', 'id="cards_reprint"')),
            'id="cards_reprint"', "unknown service operator 'cards_reprint'")


def bad_condition(path: Path, folder: Path, forms_dir: Path) -> tuple[Path, str, str]:
    """A condition that is not Python."""
    return (edited(path, folder, ('action == "next"', 'action === "next"')), 'action === "next"',
            "Flow_Next: invalid condition")


def escaping_condition(path: Path, folder: Path, forms_dir: Path) -> tuple[Path, str, str]:
    """A condition reaching for dunder attributes, which RestrictedPython refuses at compile time."""
    return (edited(path, folder, ('action == "next"', "().__class__.__base__")), "__base__",
            "Flow_Next: invalid condition")


def bad_parameter(path: Path, folder: Path, forms_dir: Path) -> tuple[Path, str, str]:
    """A service parameter expression that does not compile."""
    return (edited(path, folder, ("value='\"completed\"'", "value='\"completed'")), "value='\"completed'",
            "Activity_Complete: invalid value of parameter 'outcome'")


def missing_form(path: Path, folder: Path, forms_dir: Path) -> tuple[Path, str, str]:
    """A UI schema file that is not in forms/."""
    (forms_dir / "review_production.uischema.json").unlink()
    return (path, 'value="review_production.uischema.json"',
            "review_production.uischema.json is not a deployed form")


def invalid_schema(path: Path, folder: Path, forms_dir: Path) -> tuple[Path, str, str]:
    """A form whose JSON is fine but is no JSON Schema."""
    (forms_dir / "search_cards.schema.json").write_text('{"type": 12}')
    return path, 'value="search_cards.schema.json"', "not a valid JSON Schema"


def escaping_form_name(path: Path, folder: Path, forms_dir: Path) -> tuple[Path, str, str]:
    """A form file name pointing outside forms/."""
    return (edited(path, folder, ('value="search_cards.schema.json"', 'value="../secret.json"')),
            'value="../secret.json"', "must be a plain file name")


def xsd_violation(path: Path, folder: Path, forms_dir: Path) -> tuple[Path, str, str]:
    """An element the BPMN schema does not allow."""
    start = '<bpmn:startEvent id="StartEvent_Start"'
    return (edited(path, folder, (start, f'<bpmn:notInBpmn />\n    {start}')),
            "<bpmn:notInBpmn />", "notInBpmn")


def entity_attack(path: Path, folder: Path, forms_dir: Path) -> tuple[Path, str, str]:
    """An external entity (XXE) declared in a DOCTYPE and used in the documentation."""
    return (edited(path, folder,
                   ('<?xml version="1.0" encoding="UTF-8"?>',
                    '<?xml version="1.0" encoding="UTF-8"?>\n'
                    '<!DOCTYPE bpmn:definitions [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'),
                   ("<bpmn:documentation>Issue multiple", "<bpmn:documentation>&xxe;Issue multiple")),
            '<?xml version="1.0"', "DOCTYPE")


@pytest.mark.parametrize("breakage", [
    unknown_operator, bad_condition, escaping_condition, bad_parameter, missing_form, invalid_schema,
    escaping_form_name, xsd_violation, entity_attack,
])
def test_a_broken_process_is_refused_with_file_and_line_and_v1_stays_current(
    session, tmp_path, real_bpmn, forms_dir, operators,
    breakage: Callable[[Path, Path, Path], tuple[Path, str, str]],
):
    deploy_process(session, validate_process(real_bpmn, forms_dir, operators), "alice")
    path, marker, reason = breakage(real_bpmn, tmp_path / "broken", forms_dir)
    with pytest.raises(DeployError) as refused:
        deploy_process(session, validate_process(path, forms_dir, operators), "alice")
    [problem] = [p for p in refused.value.problems if reason in p.reason]
    assert problem.file == str(path) and problem.line == line_of(path, marker)
    assert f"{path}:{problem.line}: " in str(refused.value)
    assert "root:" not in str(refused.value)  # the entity was never read
    assert count(session, Definition) == 1
    assert current_definition(session, "TempCardsBoProcIssueMultiple").version == 1


def test_option_scripts_deploy_once_and_refuse_bad_values_with_their_line(session, project):
    script = project / "options" / TEMP_CARDS_OPTIONS
    options, created = deploy_options(session, script, VALIDATORS, "alice")
    assert created and options.version == 1 and options.values["pin_length"] == 6
    assert deploy_options(session, script, VALIDATORS, "alice") == (options, False)
    script.write_text(script.read_text().replace("pin_length = 6", "pin_length = 4"))
    with pytest.raises(DeployError) as refused:
        deploy_options(session, script, VALIDATORS, "alice")
    [problem] = refused.value.problems
    assert problem.line == line_of(script, "pin_length = 4") and "6 to 8" in problem.reason
    assert current_options(session, TEMP_CARDS_OPTIONS).version == 1
    assert count(session, OptionVersion) == 1


FORM_FILES = sorted(f"{stem}.{kind}.json" for stem in ("review_production", "search_cards", "selected_cards")
                    for kind in ("schema", "uischema"))


def test_deploy_all_deploys_everything_then_reports_unchanged(session, project, operators):
    assert deploy_all(session, project, operators, VALIDATORS, "alice", check_only=True) == [
        *(f"{form} valid" for form in FORM_FILES), "TempCardsBoProcIssueMultiple valid",
        "TempCardsScriptOptions valid"]
    assert count(session, Definition) == 0
    assert deploy_all(session, project, operators, VALIDATORS, "alice") == [
        *(f"{form} v1 deployed" for form in FORM_FILES), "TempCardsBoProcIssueMultiple v1 deployed",
        "TempCardsScriptOptions v1 deployed"]
    assert deploy_all(session, project, operators, VALIDATORS, "alice") == [
        *(f"{form} unchanged (v1)" for form in FORM_FILES), "TempCardsBoProcIssueMultiple unchanged (v1)",
        "TempCardsScriptOptions unchanged (v1)"]


def test_deploy_all_deploys_nothing_when_any_file_is_bad(session, project, operators):
    script = project / "options" / TEMP_CARDS_OPTIONS
    script.write_text(script.read_text().replace("puk_length = 8", "puk_length = 6"))
    (project / "forms" / "search_cards.schema.json").write_text("{not json")
    with pytest.raises(DeployError) as refused:
        deploy_all(session, project, operators, VALIDATORS, "alice")
    reasons = [problem.reason for problem in refused.value.problems]
    assert any("puk_length" in reason for reason in reasons)
    assert any("is not valid JSON" in reason for reason in reasons)
    assert count(session, Definition) == 0 and count(session, OptionVersion) == 0
    assert count(session, AuditEvent) == 0


def test_deploy_all_refuses_an_option_script_nobody_validates(session, project, operators):
    (project / "options" / "UnknownOptions").write_text("x = 1\n")
    with pytest.raises(DeployError, match="no option validator for 'UnknownOptions'"):
        deploy_all(session, project, operators, VALIDATORS, "alice")
    assert count(session, Definition) == 0


def test_going_back_to_older_content_makes_it_current_again(session, project, operators):
    deploy_all(session, project, operators, VALIDATORS, "alice")
    script = project / "options" / TEMP_CARDS_OPTIONS
    original = script.read_text()
    script.write_text(original.replace("validity_days = 14", "validity_days = 30"))
    lines = deploy_all(session, project, operators, VALIDATORS, "alice")
    assert lines[-1] == "TempCardsScriptOptions v2 deployed"
    script.write_text(original)
    assert deploy_all(session, project, operators, VALIDATORS, "alice")[-1] == (
        "TempCardsScriptOptions v3 deployed")
    assert current_options(session, TEMP_CARDS_OPTIONS).values["validity_days"] == 14
    assert deploy_all(session, project, operators, VALIDATORS, "alice")[-1] == (
        "TempCardsScriptOptions unchanged (v3)")
