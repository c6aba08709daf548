"""What pages parse and check once per definition version: the process specs and the forms.

A deployed definition never changes, so the text it stores is its version: the same text gives
the very same parsed object, a new version's text a new one, at once.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import spiff
from engine.db import read_only
from engine.definitions import DeployedVersions, validate_process
from engine.forms.schema_form import FormDefinitionError, form_from_text
from engine.versions import current_definition

REPO = Path(__file__).resolve().parents[2]


def _engine() -> spiff.ScriptEngine:
    """A script engine whose services answer nothing (nothing runs in these tests)."""
    return spiff.ScriptEngine(spiff.RestrictedEnvironment(lambda *_: {}))


def _copy(text: str) -> str:
    """An equal string that is another object, as a second read of the same row gives."""
    return text.encode().decode()


def test_the_specs_are_parsed_once_per_version_and_afresh_for_a_new_one(real_bpmn, forms_dir, operators,
                                                                       tmp_path):
    v1 = validate_process(real_bpmn, forms_dir, operators).spec_json
    renamed = tmp_path / real_bpmn.name
    renamed.write_text(real_bpmn.read_text().replace('name="Search cards"', 'name="Find cards"'))
    v2 = validate_process(renamed, forms_dir, operators).spec_json

    assert spiff.shared_specs(_copy(v1)) is spiff.shared_specs(v1)
    assert spiff.shared_specs(v2) is not spiff.shared_specs(v1)
    state = spiff.state_to_json(spiff.new_workflow(v1, _engine()))
    first, second = (spiff.workflow_to_read(_copy(state), _copy(v1), _engine()) for _ in range(2))
    assert first.spec is second.spec is spiff.shared_specs(v1).spec
    assert first is not second  # each read restores its own state on the shared specs
    # A workflow that runs engine steps gets specs of its own (SpiffWorkflow changes them as it runs).
    assert spiff.state_from_json(state, v1, _engine()).spec is not first.spec
    state_v2 = spiff.state_to_json(spiff.new_workflow(v2, _engine()))
    assert spiff.workflow_to_read(state_v2, v2, _engine()).spec.task_specs["Activity_SearchCards"].bpmn_name \
        == "Find cards"


def test_a_deployed_version_is_read_once(services):
    versions = DeployedVersions()
    with read_only(services.sessions) as session:
        row = current_definition(session, "TempCardsBoProcIssueMultiple")
        first = versions.get(session, row.id)
    assert (first.process_id, first.version, first.spec_json) == (row.process_id, 1, row.spec_json)
    assert versions.get(None, row.id) is first  # the second time it needs no database at all


def test_a_form_is_checked_once_per_text_and_afresh_for_new_text():
    schema = (REPO / "forms" / "search_cards.schema.json").read_text()
    ui = (REPO / "forms" / "search_cards.uischema.json").read_text()
    form = form_from_text(schema, ui)
    assert form_from_text(_copy(schema), _copy(ui)) is form
    assert [action.label for action in form.actions][:2] == ["Issue multiple temporary cards", "Cancel"]
    renamed = form_from_text(schema.replace('"title": "Search cards"', '"title": "Find cards"'), ui)
    assert renamed is not form and (renamed.title, form.title) == ("Find cards", "Search cards")


def test_a_form_that_fails_its_checks_is_refused_every_time():
    remote = '{"type": "object", "properties": {"n": {"$ref": "http://127.0.0.1:9/x.json"}}}'
    for _ in range(2):
        with pytest.raises(FormDefinitionError, match=r"\$ref"):
            form_from_text(remote, '{"ui:actions": [{"name": "next", "label": "Next"}]}')
    with pytest.raises(FormDefinitionError, match="not valid JSON"):
        form_from_text("{", "{}")
