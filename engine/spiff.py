"""The one module that speaks SpiffWorkflow: parsing, serialization, scripts and services.

Everything else in the engine works with the plain values these functions return.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from lxml import etree
from RestrictedPython import compile_restricted_eval, compile_restricted_exec, safe_builtins
from RestrictedPython.Eval import default_guarded_getitem, default_guarded_getiter
from RestrictedPython.Guards import (
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safer_getattr,
)
from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnValidator
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.util.task import TaskState

# Entities, DTDs and the network are off: a BPMN upload must not read files or explode in memory.
SAFE_XML_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_comments=False
)

# The shipped process is 30 KB; a diagram 70 times larger is no longer a process but a payload.
MAX_BPMN_BYTES = 2 * 2**20

SERIALIZER = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))
_VALIDATOR: BpmnValidator | None = None

ServiceCaller = Callable[[str, dict[str, Any]], Any]


class ScriptError(Exception):
    """A script or expression in a process is invalid or failed."""


def parse_xml(data: bytes) -> etree._ElementTree:
    """Parse XML safely; a DOCTYPE (the door to entity attacks) is refused outright.

    A document over MAX_BPMN_BYTES is refused before parsing; like every refusal here it is an
    XMLSyntaxError, which deploy reports as a problem of the file.
    """
    if len(data) > MAX_BPMN_BYTES:
        raise etree.XMLSyntaxError(
            f"the document has {len(data):,} bytes, larger than the {MAX_BPMN_BYTES // 2**20} MB allowed; "
            "remove embedded data (images, long documentation) or split the process", None, 0, 0, None)
    tree = etree.ElementTree(etree.fromstring(data, SAFE_XML_PARSER))
    if tree.docinfo.doctype:
        raise etree.XMLSyntaxError("DOCTYPE declarations are not allowed", None, 1, 0, None)
    return tree


def bpmn_parser() -> SpiffBpmnParser:
    """A parser with BPMN XSD validation on (the XSD is loaded once per process)."""
    global _VALIDATOR
    if _VALIDATOR is None:
        _VALIDATOR = BpmnValidator()
    return SpiffBpmnParser(validator=_VALIDATOR)


def spec_to_json(spec: Any, subprocess_specs: Mapping[str, Any]) -> str:
    """Serialize a parsed process spec (and its subprocess specs) for the definition row."""
    return json.dumps(
        {
            "spec": SERIALIZER.to_dict(spec),
            "subprocess_specs": {name: SERIALIZER.to_dict(s) for name, s in subprocess_specs.items()},
        }
    )


def state_to_json(workflow: BpmnWorkflow) -> str:
    """Serialize an instance without its specs: they live once, in the definition row."""
    dct = SERIALIZER.to_dict(workflow)
    dct.pop("spec", None)
    dct.pop("subprocess_specs", None)
    dct[SERIALIZER.VERSION_KEY] = SERIALIZER.VERSION
    return json.dumps(dct)


def state_from_json(state: str, spec_json: str, script_engine: PythonScriptEngine) -> BpmnWorkflow:
    """Rebuild a workflow from its stored state and the specs of its definition."""
    dct = json.loads(state)
    dct.update(json.loads(spec_json))
    SERIALIZER.migrate(dct)
    workflow = SERIALIZER.from_dict(dct)
    _attach_script_engine(workflow, script_engine)
    return workflow


def new_workflow(spec_json: str, script_engine: PythonScriptEngine) -> BpmnWorkflow:
    """Start a fresh workflow from a definition's specs."""
    specs = json.loads(spec_json)
    spec = SERIALIZER.from_dict(specs["spec"])
    subprocess_specs = {name: SERIALIZER.from_dict(s) for name, s in specs["subprocess_specs"].items()}
    return BpmnWorkflow(spec, subprocess_specs, script_engine=script_engine)


def ready_user_task(workflow: BpmnWorkflow):
    """The user task the workflow waits on, or None."""
    return workflow.get_next_task(state=TaskState.READY, manual=True)


def _attach_script_engine(workflow: BpmnWorkflow, script_engine: PythonScriptEngine) -> None:
    """Restored workflows and their subprocesses must use our restricted engine."""
    workflow.script_engine = script_engine
    for subprocess in workflow.subprocesses.values():
        subprocess.script_engine = script_engine


def _restricted_globals() -> dict[str, Any]:
    """The whitelist scripts run with: safe builtins and RestrictedPython's guards, nothing else."""
    return {
        "__builtins__": {**safe_builtins, "len": len, "min": min, "max": max, "sum": sum,
                         "any": any, "all": all, "sorted": sorted, "dict": dict, "list": list},
        "_getattr_": safer_getattr,
        "_getitem_": default_guarded_getitem,
        "_getiter_": default_guarded_getiter,
        "_write_": full_write_guard,
        "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
        "_unpack_sequence_": guarded_unpack_sequence,
    }


def _compile(compiler, text: str, name: str):
    """Restricted bytecode for ``text``; ScriptError lists what RestrictedPython refused."""
    result = compiler(text, name)
    if result.errors:
        raise ScriptError("; ".join(result.errors))
    return result.code


def _scope(context: dict, external_context: dict | None) -> dict[str, Any]:
    scope = _restricted_globals()
    scope.update(external_context or {})
    scope.update(context)
    return scope


def check_expression(text: str) -> None:
    """Raise ScriptError unless ``text`` compiles as a restricted expression."""
    _compile(compile_restricted_eval, text, "<expression>")


def check_script(text: str) -> None:
    """Raise ScriptError unless ``text`` compiles as a restricted script."""
    _compile(compile_restricted_exec, text, "<script>")


class RestrictedEnvironment(BasePythonScriptEngineEnvironment):
    """Runs BPMN scripts and conditions under RestrictedPython; services go to ``call``."""

    def __init__(self, call: ServiceCaller):
        super().__init__({})
        self._call = call

    def evaluate(self, expression, context, external_context=None):
        """Evaluate a condition or parameter expression against the task data."""
        # Modelers wrap long conditions over lines; deploy checks the stripped text, so run it too.
        code = _compile(compile_restricted_eval, expression.strip(), "<expression>")
        return eval(code, _scope(context, external_context))  # noqa: S307 - restricted, guarded

    def execute(self, script, context, external_context=None):
        """Run a script task; only the names it binds flow back into the task data."""
        scope = _scope(context, external_context)
        exec(_compile(compile_restricted_exec, script, "<script>"), scope)  # noqa: S102 - restricted
        for key, value in scope.items():
            if not key.startswith("_") and not callable(value):
                context[key] = value
        return True

    def call_service(self, context, operation_name=None, operation_params=None, **kwargs):
        """Call the registered handler with plain parameter values; return its JSON."""
        params = {name: p["value"] for name, p in (operation_params or {}).items()}
        return json.dumps(self._call(operation_name, params))


class ScriptEngine(PythonScriptEngine):
    """SpiffWorkflow's engine with our environment and a working ``call_service``.

    3.2.0's own ``call_service`` refers to an undefined name on errors; ours reports the
    handler's exception as a task error instead.
    """

    def call_service(self, task, **kwargs):
        """Call a service for ``task``; errors become workflow task exceptions."""
        try:
            return self.environment.call_service(task.data, **kwargs)
        except Exception as err:  # the handler's error, shown with the task that called it
            raise self.create_task_exec_exception(task, "", err) from err


class BpmnParseError(Exception):
    """SpiffWorkflow refused a BPMN document (XSD or its own parser checks); says where."""

    def __init__(self, message: str, line: int | None = None, element_id: str | None = None):
        super().__init__(message)
        self.line = line
        self.element_id = element_id


def parse_specs(root: etree._Element, filename: str) -> dict[str, str]:
    """Validate ``root`` against the BPMN XSD and parse it: spec JSON per executable process id.

    SpiffWorkflow's exceptions stay in this module; callers get a BpmnParseError with the line
    (XSD errors) or the id of the offending element (parser errors) when SpiffWorkflow knows it.
    """
    parser = bpmn_parser()
    try:
        parser.add_bpmn_xml(root, filename)
        return {
            process_id: spec_to_json(parser.get_spec(process_id), parser.get_subprocess_specs(process_id))
            for process_id in parser.get_process_ids()
        }
    except ValidationException as err:
        line = err.line_number if isinstance(err.line_number, int) else None
        raise BpmnParseError(str(err.args[0]) if err.args else str(err), line, err.id or None) from err
    except SpiffWorkflowException as err:
        raise BpmnParseError(str(err)) from err
