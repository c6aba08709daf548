"""What an admin authors (BPMN, conditions, scripts, form files), written as an attacker would.

Each hostile input is refused at deploy with a clear reason and, where there is one, its line;
nothing raises a traceback (RecursionError, MemoryError) out of the checks.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine import spiff
from engine.deploy_errors import DeployError
from engine.forms.schema_form import FormDefinitionError, read_form_file
from engine.process_validation import validate_process

DRAFT = "https://json-schema.org/draft/2020-12/schema"
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


# --- form files ----------------------------------------------------------------------------------

FORMS = Path(__file__).resolve().parents[2] / "forms"


def schema_with(**field: object) -> bytes:
    """A form schema with one text field "code" carrying ``field``'s keywords."""
    return json.dumps({"type": "object", "properties": {"code": {"type": "string", **field}}}).encode()


def refused_form(body: bytes, kind: str = "schema") -> str:
    """The reason read_form_file gives for ``body``."""
    with pytest.raises(FormDefinitionError) as refused:
        read_form_file("hostile.schema.json", body, kind)
    assert str(refused.value).startswith("form file hostile.schema.json ")
    return str(refused.value)


@pytest.mark.parametrize("path", sorted(FORMS.glob("*.json")), ids=lambda path: path.name)
def test_the_shipped_forms_read_cleanly(path):
    kind = "ui" if path.name.endswith(".uischema.json") else "schema"
    assert read_form_file(path.name, path.read_bytes(), kind) == json.loads(path.read_text())


@pytest.mark.parametrize(("body", "kind", "reason"), [
    (b" " * (256 * 1024) + b"{}", "ui", "has 262,146 bytes; the limit is 256 KB"),
    ('{"title": "caf\u00e9"}'.encode("latin-1"), "schema", "is not UTF-8 text"),
    (b'{"type": "object",}', "schema", "is not valid JSON"),
    (b'{"type": "object", "maximum": NaN}', "schema", "is not valid JSON: NaN is not a JSON value"),
    (b"[" * 1000 + b"]" * 1000, "ui", "nested more than 32 levels deep"),
    (b"[" * 100_000 + b"]" * 100_000, "schema", "nested more than 32 levels deep"),
    (b'{"a": ' * 40 + b"1" + b"}" * 40, "ui", "nested more than 32 levels deep"),
    (b"[]", "ui", "cannot be used: it must be a JSON object"),
    (b'"object"', "schema", "cannot be used: it must be a JSON object"),
    (b'{"type": 12}', "schema", "is not a valid JSON Schema"),
])
def test_unreadable_form_files_are_refused_with_the_reason(body, kind, reason):
    assert reason in refused_form(body, kind)


@pytest.mark.parametrize("reference", [
    "http://127.0.0.1:9/schema.json", "https://example.org/s#/$defs/a", "file:///etc/passwd",
    "other.schema.json", "other.schema.json#/$defs/a", "//evil.example/x", "../forms/x.json",
    "#/$defs/missing", "#anchor", "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66",
])
def test_a_reference_outside_the_form_is_refused(reference):
    body = json.dumps({"type": "object", "$defs": {"code": {"type": "string"}},
                       "properties": {"code": {"$ref": reference}}}).encode()
    reason = refused_form(body)
    assert "#/properties/code refers to" in reason and "must point inside the same form" in reason


@pytest.mark.parametrize(("schema", "reason"), [
    ({"$id": "http://127.0.0.1:9/", "type": "object", "properties": {"a": {"$ref": "#/x"}}}, "# uses $id"),
    ({"type": "object", "properties": {"a": {"$id": "file:///etc/", "$ref": "#"}}},
     "#/properties/a uses $id"),
    ({"$schema": "http://127.0.0.1:9/meta", "type": "object"}, "sets $schema to 'http://127.0.0.1:9/meta'"),
    ({"type": "object", "properties": {"a": {"$schema": DRAFT, "type": "string"}}},
     "#/properties/a sets $schema"),
    ({"type": "object", "properties": {"a": {"$dynamicRef": "#meta"}}}, "uses $dynamicRef"),
    ({"type": "object", "$defs": {"a": {"$anchor": "a"}}}, "#/$defs/a uses $anchor"),
])
def test_base_changing_keywords_are_refused(schema, reason):
    assert reason in refused_form(json.dumps(schema).encode())


@pytest.mark.parametrize("schema", [
    {"$ref": "#", "type": "object"},
    {"type": "object", "allOf": [{"$ref": "#"}]},
    {"type": "object", "properties": {"a": {"$ref": "#/properties/a"}}},
    {"type": "object", "$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"not": {"$ref": "#/$defs/a"}}},
     "properties": {"x": {"$ref": "#/$defs/a"}}},
])
def test_a_reference_loop_on_the_same_value_is_refused(schema):
    assert "without descending into the data, so checking a post would never end" in refused_form(
        json.dumps(schema).encode())


def test_references_inside_the_form_and_recursion_through_the_data_are_accepted():
    schema = {"$schema": DRAFT, "type": "object",
              "$defs": {"code": {"type": "string", "pattern": "^[A-Z]{2}-[0-9]+$"},
                        "node": {"type": "object", "properties": {"child": {"$ref": "#/$defs/node"}}}},
              "properties": {"code": {"$ref": "#/$defs/code"}, "tree": {"$ref": "#/$defs/node"},
                             "same": {"allOf": [{"$ref": "#/$defs/code"}]}}}
    assert read_form_file("fine.schema.json", json.dumps(schema).encode(), "schema") == schema


CATASTROPHIC = ["(a+)+$", "(a*)*b", "(a|aa)+$", "(.*a){20}", r"^(\w+\s?)*$", "(a?){30}a{30}", r"(x+x+)+y",
                r"(a)\1", r"(?P<q>a)(?P=q)", "((ab)*c?)+", "(?=(a+)+)b"]


@pytest.mark.parametrize("pattern", CATASTROPHIC)
def test_a_catastrophic_pattern_is_refused(pattern):
    reason = refused_form(schema_with(pattern=pattern))
    assert f"#/properties/code: the pattern {pattern!r}" in reason
    assert "exponential time" in reason


@pytest.mark.parametrize("schema", [
    {"type": "object", "patternProperties": {"(a+)+$": {"type": "string"}}},
    {"type": "object", "propertyNames": {"pattern": "(a|aa)+$"}},
    {"type": "object", "properties": {"list": {"type": "array", "items": {"pattern": "(.*a){20}"}}}},
    {"type": "object", "$defs": {"deep": {"properties": {"inner": {"pattern": "(a*)*b"}}}}},
    {"type": "object", "properties": {"x": {"anyOf": [{"type": "integer"}, {"pattern": "(a+)+$"}]}}},
])
def test_a_catastrophic_pattern_anywhere_in_the_schema_is_refused(schema):
    assert "exponential time" in refused_form(json.dumps(schema).encode())


@pytest.mark.parametrize(("pattern", "reason"), [
    ("(", "is not a valid regular expression"),
    (r"\p{L}+", "is not a valid regular expression"),
    ("a" * 1001, "is 1,001 characters long; the limit is 1,000"),
])
def test_an_unusable_pattern_is_refused(pattern, reason):
    assert reason in refused_form(schema_with(pattern=pattern))


@pytest.mark.parametrize("pattern", ["^[A-Z]{2}-[0-9]+$", r"^\d{4}-\d{2}-\d{2}$", "^[^@]+@[^@]+$", "(ab)+",
                                     "(?:a|b)+", r"^(\d{3}-)+\d$", "^(yes|no)$", "^a{2,5}$"])
def test_ordinary_patterns_are_accepted(pattern):
    assert read_form_file("fine.schema.json", schema_with(pattern=pattern), "schema")
