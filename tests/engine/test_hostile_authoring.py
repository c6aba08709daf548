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


# --- conditions and scripts ------------------------------------------------------------------------

REFUSED_CODE = [
    ("'{0.__class__}'.format(order)", "line 1: .format() is not allowed"),
    ("'{o}'.format_map(order)", "line 1: .format_map() is not allowed"),
    ("'{0.__class__.__mro__}' + action", "line 1: the text names the Python internal '__class__'"),
    ("b'__globals__' == action", "the Python internal '__globals__'"),
    ("f'{action!r:{\"__class__\"}}'", "the Python internal '__class__'"),
    ("().__class__.__base__", '"__class__" is an invalid attribute name'),
]
TOO_DEEP = {
    "nested parentheses": "(" * 4_000 + "1" + ")" * 4_000,
    "nested lists": "[" * 4_000 + "]" * 4_000,
    "a long chain of additions": "1" + "+1" * 4_999,
    "nested unary minus": "-" * 9_000 + "1",
    "nested not": "not " * 2_400 + "x",
    "attribute chain": "x" + ".a" * 4_000,
    "nested conditional expressions": "1 if x else " * 800 + "1",
}


@pytest.mark.parametrize(("code", "reason"), REFUSED_CODE)
def test_format_and_python_internals_are_refused_when_checked(code, reason):
    with pytest.raises(spiff.ScriptError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        spiff.check_expression(code)
    with pytest.raises(spiff.ScriptError, match="not allowed|internal|invalid attribute"):
        spiff.check_script(f"result = 1\nvalue = {code}")


def test_a_script_refusal_names_the_line_inside_the_script():
    with pytest.raises(spiff.ScriptError, match="^line 3: .format"):
        spiff.check_script("a = 1\nb = 2\nc = '{0}'.format(a)")


@pytest.mark.parametrize("code", TOO_DEEP.values(), ids=TOO_DEEP.keys())
def test_deeply_nested_code_is_refused_without_a_traceback(code):
    with pytest.raises(spiff.ScriptError, match="nested too deeply|too many nested parentheses"):
        spiff.check_expression(code)


@pytest.mark.parametrize(("check", "text", "reason"), [
    (spiff.check_expression, "1+" * 500_000 + "1",
     "an expression may have at most 10,000 characters, this one has 1,000,001"),
    (spiff.check_expression, "x or " * 2_001 + "x", "at most 10,000 characters"),
    (spiff.check_script, "x = 1\n" * 20_000,
     "a script may have at most 100,000 characters, this one has 120,000"),
])
def test_overlong_code_is_refused_before_parsing(check, text, reason):
    with pytest.raises(spiff.ScriptError, match=reason):
        check(text)


def test_a_nul_character_is_refused_clearly():
    with pytest.raises(spiff.ScriptError, match="^syntax error: .*null bytes"):
        spiff.check_expression("x\x00")


def test_a_hostile_condition_is_refused_at_deploy_with_its_line(tmp_path, real_bpmn, forms_dir, operators):
    path = write(tmp_path, edited_text(real_bpmn, ('action == "next"', "'{0.__class__}'.format(action)")))
    problems = refusal(path, forms_dir, operators)
    line = line_of(path, "'{0.__class__}'.format(action)")
    assert f"{path}:{line}: Flow_Next: invalid condition: line 1: .format() is not allowed" in problems[0]


def test_a_hostile_script_is_refused_at_deploy_with_its_line(tmp_path, real_bpmn, forms_dir, operators):
    path = write(tmp_path, with_script_task(real_bpmn, "secret = '__class__'"))
    [problem] = refusal(path, forms_dir, operators)
    assert problem.startswith(f"{path}:{line_of(path, '<bpmn:script>')}: Activity_Prepare: invalid script: ")
    assert "the Python internal '__class__'" in problem


def test_a_deeply_nested_condition_is_one_problem_not_a_crash(tmp_path, real_bpmn, forms_dir, operators):
    path = write(tmp_path, edited_text(real_bpmn, ('action == "next"', "-" * 9_000 + "1")))
    [problem] = refusal(path, forms_dir, operators)
    assert "Flow_Next: invalid condition: an expression is nested too deeply" in problem


def test_a_plain_script_task_still_deploys(tmp_path, real_bpmn, forms_dir, operators):
    path = write(tmp_path, with_script_task(real_bpmn, "greeting = 'Hello ' + 'world'\ncount = len([1, 2])"))
    assert validate_process(path, forms_dir, operators).process_id == "TempCardsBoProcIssueMultiple"
