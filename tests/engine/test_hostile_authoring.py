"""What an admin authors (BPMN, conditions, scripts, form files), written as an attacker would.

Each hostile input is refused at deploy with a clear reason and, where there is one, its line;
nothing raises a traceback (RecursionError, MemoryError) out of the checks.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import spiff
from engine.deploy_errors import DeployError
from engine.process_validation import validate_process

SCRIPT_TASK = """
    <bpmn:scriptTask id="Activity_Prepare" name="Prepare">
      <bpmn:incoming>Flow_StartToPrepare</bpmn:incoming>
      <bpmn:outgoing>Flow_PrepareToOpenOrder</bpmn:outgoing>
      <bpmn:script>{script}</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:sequenceFlow id="Flow_PrepareToOpenOrder" sourceRef="Activity_Prepare"
                       targetRef="Activity_OpenOrder" />
  </bpmn:process>"""
SCRIPT_TASK_DI = """
      <bpmndi:BPMNShape id="Activity_Prepare_di" bpmnElement="Activity_Prepare">
        <dc:Bounds x="160" y="300" width="100" height="80" />
      </bpmndi:BPMNShape>
      <bpmndi:BPMNEdge id="Flow_PrepareToOpenOrder_di" bpmnElement="Flow_PrepareToOpenOrder">
        <di:waypoint x="260" y="340" />
        <di:waypoint x="300" y="240" />
      </bpmndi:BPMNEdge>
    </bpmndi:BPMNPlane>"""


def edited_text(source: Path, *replacements: tuple[str, str]) -> str:
    """The text of ``source`` with each (old, new) replaced exactly once."""
    text = source.read_text()
    for old, new in replacements:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def with_script_task(source: Path, script: str) -> str:
    """The shipped process with a script task "Prepare" (running ``script``) before Open order."""
    escaped = script.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return edited_text(
        source,
        ('sourceRef="StartEvent_Start" targetRef="Activity_OpenOrder"',
         'sourceRef="StartEvent_Start" targetRef="Activity_Prepare"'),
        ("<bpmn:incoming>Flow_StartToOpenOrder</bpmn:incoming>\n      <bpmn:outgoing>Flow_OpenOrder",
         "<bpmn:incoming>Flow_PrepareToOpenOrder</bpmn:incoming>\n      <bpmn:outgoing>Flow_OpenOrder"),
        ("\n  </bpmn:process>", SCRIPT_TASK.format(script=escaped)),
        ("\n    </bpmndi:BPMNPlane>", SCRIPT_TASK_DI),
    )


def write(tmp_path: Path, text: str, name: str = "TempCardsBoProcIssueMultiple.bpmn") -> Path:
    """``text`` as a BPMN file in a folder of its own."""
    folder = tmp_path / "edited"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def refusal(path: Path, forms_dir: Path, operators) -> list[str]:
    """The problems deploy reports for ``path`` (``file:line: reason``)."""
    with pytest.raises(DeployError) as refused:
        validate_process(path, forms_dir, operators)
    return [str(problem) for problem in refused.value.problems]


def line_of(path: Path, marker: str) -> int:
    """The 1-based line of the first occurrence of ``marker`` in a file."""
    return next(number for number, line in enumerate(path.read_text().splitlines(), 1) if marker in line)


# --- the BPMN document itself --------------------------------------------------------------------


def test_comments_and_processing_instructions_in_a_process_are_accepted(tmp_path, real_bpmn, forms_dir,
                                                                          operators):
    text = edited_text(
        real_bpmn,
        ('isExecutable="true">', 'isExecutable="true">\n    <!-- reviewed by the card office -->\n'
                                 '    <?modeler layout="auto"?>'),
        ('<bpmn:userTask id="Activity_SearchCards" name="Search cards">',
         '<bpmn:userTask id="Activity_SearchCards" name="Search cards"><!-- the picker -->'),
        ('<bpmn:exclusiveGateway id="Gateway_IssueOrCancel" name="Issue or cancel?">',
         '<bpmn:exclusiveGateway id="Gateway_IssueOrCancel" name="Issue or cancel?"><?hint?>'),
    )
    validated = validate_process(write(tmp_path, text), forms_dir, operators)
    assert validated.process_id == "TempCardsBoProcIssueMultiple"
    assert "<!-- reviewed by the card office -->" in validated.bpmn


def test_a_document_over_the_size_limit_is_refused_before_parsing(tmp_path, real_bpmn, forms_dir, operators):
    padding = "<!--" + "x" * spiff.MAX_BPMN_BYTES + "-->"
    path = write(tmp_path, edited_text(real_bpmn, ("\n  <bpmn:process", f"\n  {padding}\n  <bpmn:process")))
    [problem] = refusal(path, forms_dir, operators)
    assert f"{path}: " in problem and "larger than the 2 MB allowed" in problem


def test_a_document_under_the_limit_with_padding_still_deploys(tmp_path, real_bpmn, forms_dir, operators):
    padding = "<!--" + "x" * (spiff.MAX_BPMN_BYTES - 100_000) + "-->"
    path = write(tmp_path, edited_text(real_bpmn, ("\n  <bpmn:process", f"\n  {padding}\n  <bpmn:process")))
    assert validate_process(path, forms_dir, operators).process_id == "TempCardsBoProcIssueMultiple"
