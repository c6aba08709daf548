"""Everything a BPMN file must pass before it may be deployed, reported all at once.

SpiffWorkflow's parser checks the XSD and its own structure, but not scripts, conditions,
service operator names or form files (a typo there would only fail when an order reaches the
step). This module checks all of them up front, each problem with its file and line.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from engine.bpmn_lint import BPMN, lint
from engine.bpmn_lint import NS as LAYOUT_NS
from engine.deploy_errors import DeployError, Problem
from engine.forms.schema_form import FormDefinitionError, check_form, read_form_file
from engine.spiff import BpmnParseError, ScriptError, check_expression, check_script, parse_specs, parse_xml
from engine.start_menus import check_start_menu, start_properties

SPIFF = "http://spiffworkflow.org/bpmn/schema/1.0/core"
NS = {"bpmn": BPMN, "spiffworkflow": SPIFF}
FORM_PROPERTIES = {"formJsonSchemaFilename": "schema", "formUiSchemaFilename": "ui"}
EXPRESSIONS = ".//bpmn:conditionExpression | .//bpmn:loopCondition | .//bpmn:completionCondition"
PROPERTIES = "bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property"
SCRIPTS = ".//bpmn:scriptTask/bpmn:script | .//spiffworkflow:preScript | .//spiffworkflow:postScript"


@dataclass(frozen=True)
class ValidatedProcess:
    """A BPMN file that passed every check, with what its definition row will hold."""

    process_id: str
    name: str
    bpmn: str
    forms: dict[str, str]
    spec_json: str
    content_hash: str


def validate_process(path: Path, forms: Path | Mapping[str, bytes], operators: Collection[str],
                     widgets: Collection[str] | None = None, file: str | None = None) -> ValidatedProcess:
    """Check a BPMN file and its forms completely; raise DeployError listing every problem.

    ``forms`` is the forms folder, or the form bodies by file name (the deployed form library);
    ``file`` names the file in problems (default: the path).
    """
    return validate_process_bytes(path.read_bytes(), file or str(path), forms, operators, widgets)


def validate_process_bytes(data: bytes, file: str, forms: Path | Mapping[str, bytes],
                           operators: Collection[str], widgets: Collection[str] | None = None
                           ) -> ValidatedProcess:
    """Check BPMN text (from a file or the admin's editor) named ``file`` in problems."""
    if isinstance(forms, Path):
        forms = FormFolder(forms)
    try:
        root = parse_xml(data).getroot()
        text = data.decode("utf-8")
    except etree.XMLSyntaxError as err:
        problem = Problem(file, err.lineno or None, f"not safe, well-formed XML: {err.msg}")
        raise DeployError([problem]) from err
    except UnicodeDecodeError as err:
        raise DeployError([Problem(file, None, "BPMN files must be UTF-8")]) from err

    problems = [Problem(file, issue.line, f"{issue.element_id}: {issue.reason}") for issue in lint(root)]
    problems += _check_code(root, file)
    problems += _check_operators(root, file, operators)
    used_forms, form_problems = _load_forms(root, file, forms, widgets)
    problems += form_problems
    process, process_problems = _executable_process(root, file)
    problems += process_problems
    if process is not None:
        problems += [Problem(file, line, reason) for line, reason in check_start_menu(process)]
    # Reasons here start with the id of the element to blame; SpiffWorkflow's parser would only
    # repeat, less clearly, a complaint about an element already reported.
    specs, parse_problems = _parse(root, file, _spec_file_name(process),
                                   {p.reason.partition(": ")[0] for p in problems})
    problems += parse_problems
    if problems:
        raise DeployError(problems)
    process_id = process.get("id")
    return ValidatedProcess(
        process_id=process_id,
        name=process.get("name") or process_id,
        bpmn=text,
        forms={name: body.decode("utf-8") for name, body in used_forms.items()},
        spec_json=specs[process_id],
        content_hash=content_fingerprint(specs[process_id], used_forms, root),
    )


def _owner_id(element: etree._Element) -> str:
    """The id of the nearest BPMN element around ``element`` (the task or flow it belongs to)."""
    for ancestor in element.iterancestors():
        if etree.QName(ancestor).namespace == BPMN and ancestor.get("id"):
            return ancestor.get("id")
    return ""


def _check_code(root: etree._Element, file: str) -> list[Problem]:
    """Conditions, parameter expressions and scripts must compile under RestrictedPython."""
    checks = [
        (node, node.text, check_expression, "condition") for node in root.xpath(EXPRESSIONS, namespaces=NS)
    ]
    checks += [(node, node.text, check_script, "script") for node in root.xpath(SCRIPTS, namespaces=NS)]
    checks += [
        (node, node.get("value"), check_expression, f"value of parameter '{node.get('id')}'")
        for node in root.iterfind(".//spiffworkflow:serviceTaskOperator//spiffworkflow:parameter", NS)
    ]
    problems = []
    for node, code, check, what in checks:
        owner = _owner_id(node)
        if not (code or "").strip():
            problems.append(Problem(file, node.sourceline, f"{owner}: empty {what}"))
            continue
        try:
            check(code.strip())
        except ScriptError as err:
            problems.append(Problem(file, node.sourceline, f"{owner}: invalid {what}: {err}"))
    return problems


def _check_operators(root: etree._Element, file: str, operators: Collection[str]) -> list[Problem]:
    """Every service task names a published operator, and its parameters are complete."""
    problems = []
    for operator in root.iterfind(".//spiffworkflow:serviceTaskOperator", NS):
        owner, name = _owner_id(operator), operator.get("id")
        if name not in operators:
            known = ", ".join(sorted(operators)) or "none"
            problems.append(Problem(file, operator.sourceline, f"{owner}: unknown service operator "
                                                               f"'{name}'; published operators: {known}"))
        for parameter in operator.iterfind(".//spiffworkflow:parameter", NS):
            missing = [attr for attr in ("id", "type", "value") if parameter.get(attr) is None]
            if missing:
                problems.append(Problem(file, parameter.sourceline,
                                        f"{owner}: parameter lacks attribute(s) {', '.join(missing)}"))
    return problems


class FormFolder(Mapping[str, bytes]):
    """The form files of a folder by plain file name, read when asked for (deploy from files)."""

    def __init__(self, folder: Path):
        self.folder = folder

    def __getitem__(self, name: str) -> bytes:
        if not _plain_name(name):
            raise KeyError(name)
        path = self.folder / name
        if not path.is_file():
            raise KeyError(name)
        return path.read_bytes()

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(p.name for p in self.folder.glob("*.json") if p.is_file()))

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _plain_name(name: str) -> bool:
    """A plain file name: no folder, no dot file, no backslash (nothing outside the forms)."""
    return bool(name) and name == Path(name).name and not name.startswith(".") and "\\" not in name


def _load_forms(root: etree._Element, file: str, available: Mapping[str, bytes],
                widgets: Collection[str] | None) -> tuple[dict[str, bytes], list[Problem]]:
    """Read every form a user task names: it must exist, be JSON, and be a valid (UI) schema;
    with ``widgets`` given, every widget a form names must be one of them."""
    forms: dict[str, bytes] = {}
    problems = []
    for task in root.iterfind(".//bpmn:userTask", NS):
        properties = {
            prop.get("name"): prop
            for prop in task.iterfind(PROPERTIES, NS)
        }
        if "formJsonSchemaFilename" not in properties:
            problems.append(Problem(file, task.sourceline, f"{task.get('id')}: user task names no form "
                                                           "(property formJsonSchemaFilename)"))
        for prop_name, kind in FORM_PROPERTIES.items():
            if prop_name in properties:
                prop = properties[prop_name]
                reason = _load_form(available, prop.get("value") or "", kind, forms)
                if reason:
                    problems.append(Problem(file, prop.sourceline, f"{task.get('id')}: {reason}"))
        reason = _check_widgets(properties, forms, widgets)
        if reason:
            problems.append(Problem(file, task.sourceline, f"{task.get('id')}: {reason}"))
    return forms, problems


def _check_widgets(properties: dict, forms: dict[str, bytes], widgets: Collection[str] | None) -> str | None:
    """Why the task's form cannot be drawn with the published widgets, or None."""
    names = [properties[p].get("value") if p in properties else None for p in FORM_PROPERTIES]
    if widgets is None or names[0] not in forms or (names[1] is not None and names[1] not in forms):
        return None  # nothing to check, or the files' own problems are reported already
    schema = json.loads(forms[names[0]])
    ui_schema = json.loads(forms[names[1]]) if names[1] else None
    try:
        check_form(schema, ui_schema, widgets)
    except FormDefinitionError as error:
        return f"form {names[0]}: {error}"
    return None


def _load_form(available: Mapping[str, bytes], name: str, kind: str, forms: dict[str, bytes]) -> str | None:
    """Load one form into ``forms``; the reason it is unusable, or None."""
    # A plain file name only: a BPMN upload must not make deploy read files outside forms/.
    if not _plain_name(name):
        return f"form file name {name!r} must be a plain file name inside forms/"
    try:
        body = available[name]
    except KeyError:
        return f"form file {name} is not a deployed form; deploy it first or pick one of the forms"
    reason = check_form_file(name, body, kind)
    if reason is None:
        forms[name] = body
    return reason


def form_kind(name: str) -> str | None:
    """"schema" or "ui" from a form file's name, None when the name is neither."""
    if name.endswith(".uischema.json"):
        return "ui"
    if name.endswith(".schema.json"):
        return "schema"
    return None


def check_form_file(name: str, body: bytes, kind: str) -> str | None:
    """Why a form file (JSON Schema or UI schema) is unusable, or None when it is fine."""
    try:
        read_form_file(name, body, kind)
    except FormDefinitionError as err:
        return str(err)
    return None


def _executable_process(root: etree._Element, file: str) -> tuple[etree._Element | None, list[Problem]]:
    """The one executable process a deployable file must contain."""
    processes = [p for p in root.iterfind("bpmn:process", NS) if p.get("isExecutable") == "true"]
    if len(processes) == 1:
        return processes[0], []
    return None, [Problem(file, root.sourceline,
                          f"a BPMN file must hold exactly one executable process, found {len(processes)}")]


def _parse(root: etree._Element, file: str, spec_name: str,
           reported: set[str]) -> tuple[dict[str, str], list[Problem]]:
    """SpiffWorkflow's XSD validation and parse; skip its complaint about an element already reported."""
    try:
        return parse_specs(root, spec_name), []
    except BpmnParseError as err:
        if err.element_id and err.element_id in reported:
            return {}, []
        line = err.line
        if line is None and err.element_id:
            found = root.xpath("//*[@id=$id]", id=err.element_id)
            line = found[0].sourceline if found else None
        where = f"{err.element_id}: " if err.element_id else ""
        return {}, [Problem(file, line, f"{where}{err}")]


def _spec_file_name(process: etree._Element | None) -> str:
    """The file name the parser records in the spec: the process id, wherever the text came from."""
    return f"{process.get('id')}.bpmn" if process is not None else "process.bpmn"


def content_fingerprint(spec_json: str, forms: Mapping[str, bytes], root: etree._Element) -> str:
    """sha256 of what the engine runs: the parsed spec, the forms it binds, and the diagram layout.

    Not the XML text: a modeler that re-serialises a process (other prefixes, attribute order,
    whitespace) without changing it makes no new version; moving a shape does.
    """
    digest = hashlib.sha256(b"spec\0" + json.dumps(json.loads(spec_json), sort_keys=True).encode())
    for name in sorted(forms):
        digest.update(b"form\0" + name.encode() + b"\0" + hashlib.sha256(forms[name]).digest())
    digest.update(b"layout\0" + json.dumps(_layout(root), sort_keys=True).encode())
    # Where the process starts from is no part of its spec; a process that declares nothing
    # keeps the hash it had before start menus existed.
    menu = start_properties(root)
    if menu:
        digest.update(b"menu\0" + json.dumps(menu, sort_keys=True).encode())
    return digest.hexdigest()


def _layout(root: etree._Element) -> dict[str, list[float]]:
    """Shape bounds and edge waypoints by element id, as numbers (labels are the modeler's own)."""
    layout: dict[str, list[float]] = {}
    for shape in root.iterfind(".//bpmndi:BPMNShape", LAYOUT_NS):
        bounds = shape.find("dc:Bounds", LAYOUT_NS)
        if bounds is not None:
            layout[shape.get("bpmnElement", "")] = [_number(bounds.get(a))
                                                    for a in ("x", "y", "width", "height")]
    for edge in root.iterfind(".//bpmndi:BPMNEdge", LAYOUT_NS):
        points = edge.iterfind("di:waypoint", LAYOUT_NS)
        layout[edge.get("bpmnElement", "")] = [_number(point.get(a)) for point in points for a in ("x", "y")]
    return layout


def _number(text: str | None) -> float:
    """A coordinate as a rounded number (modelers write 100, 100.0 or 100.00001 for the same)."""
    try:
        return round(float(text or 0), 2)
    except ValueError:
        return 0.0
