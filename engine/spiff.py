"""The one module that speaks SpiffWorkflow: parsing, serialization, scripts and services.

Everything else in the engine works with the plain values these functions return.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn import BpmnEvent
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnValidator
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.specs.mixins.events.end_event import EndEvent
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.util.task import TaskState

from engine.script_sandbox import ScriptError, ScriptSandbox, compile_restricted, shared_sandbox

# Entities, DTDs and the network are off: a BPMN upload must not read files or explode in memory.
SAFE_XML_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_comments=False
)

# The shipped process is 25 KB; a document 80 times larger is no longer a diagram but a payload.
MAX_BPMN_BYTES = 2 * 2**20

SERIALIZER = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))
_VALIDATOR: BpmnValidator | None = None
# Definitions whose parsed specs are kept for reading (a few versions of each process at most).
SHARED_SPECS = 32
# Instance states whose ready user task is kept (pages show the same few hundred orders again).
READY_STEPS = 1024

ServiceCaller = Callable[[str, dict[str, Any]], Any]


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
    """Rebuild a workflow from its stored state and the specs of its definition, to run it."""
    dct = json.loads(state)
    dct.update(json.loads(spec_json))
    SERIALIZER.migrate(dct)
    workflow = SERIALIZER.from_dict(dct)
    _attach_script_engine(workflow, script_engine)
    return workflow


@dataclass(frozen=True)
class ParsedSpecs:
    """A definition's process spec and subprocess specs, parsed from its spec JSON."""

    spec: Any
    subprocess_specs: Mapping[str, Any]


@lru_cache(maxsize=SHARED_SPECS)
def shared_specs(spec_json: str) -> ParsedSpecs:
    """The specs of ``spec_json``, parsed once and shared by every reader of that definition.

    Keyed by the text itself: a deployed definition never changes, so its text is its version
    (a new version, another text, is parsed afresh), and unlike a row id it names the same
    specs in every database a process opens.
    """
    specs = json.loads(spec_json)
    return ParsedSpecs(SERIALIZER.from_dict(specs["spec"]),
                       {name: SERIALIZER.from_dict(s) for name, s in specs["subprocess_specs"].items()})


def workflow_to_read(state: str, spec_json: str, script_engine: PythonScriptEngine) -> BpmnWorkflow:
    """Rebuild a workflow to read it (its ready task, its task states) on its definition's shared specs.

    Never run the result: SpiffWorkflow connects handlers to a spec's events while it runs a
    workflow (multi-instance tasks), which threads sharing the spec would race on; engine steps
    use state_from_json. A state saved by an older serializer is migrated there too.
    """
    dct = json.loads(state)
    if dct.get(SERIALIZER.VERSION_KEY) != SERIALIZER.VERSION:
        return state_from_json(state, spec_json, script_engine)
    del dct[SERIALIZER.VERSION_KEY]
    specs = shared_specs(spec_json)
    # Restoring passes values it has no converter for through as they are: here, the parsed specs.
    dct["spec"], dct["subprocess_specs"] = specs.spec, dict(specs.subprocess_specs)
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


def waiting_messages(workflow: BpmnWorkflow) -> set[str]:
    """Names of the messages the workflow's catch events wait for now."""
    return {event.name for event in workflow.waiting_events() if event.event_type == "MessageEventDefinition"}


def catch_message(workflow: BpmnWorkflow, name: str, payload: dict) -> bool:
    """Deliver message ``name`` to the catch event waiting for it; False when none waits.

    The event is built from the waiting task's own definition: SpiffWorkflow matches events by
    class and name, and the parser decides the class (its Spiff variant carries the variable
    the payload lands in).
    """
    for task in workflow.get_tasks(state=TaskState.WAITING):
        definition = getattr(task.task_spec, "event_definition", None)
        if definition is not None and type(definition).__name__ == "MessageEventDefinition" \
                and definition.name == name:
            workflow.catch(BpmnEvent(definition, payload=payload))
            return True
    return False


def waits_for(workflow: BpmnWorkflow) -> str | None:
    """What a workflow that is not finished waits for: "user", "message", or None (engine work due)."""
    if workflow.is_completed():
        return None
    if ready_user_task(workflow) is not None:
        return "user"
    if waiting_messages(workflow):
        return "message"
    return None


def _attach_script_engine(workflow: BpmnWorkflow, script_engine: PythonScriptEngine) -> None:
    """Restored workflows and their subprocesses must use our restricted engine."""
    workflow.script_engine = script_engine
    for subprocess in workflow.subprocesses.values():
        subprocess.script_engine = script_engine


def check_expression(text: str) -> None:
    """Raise ScriptError unless ``text`` compiles as a restricted expression (see script_sandbox)."""
    compile_restricted(text, "eval")


def check_script(text: str) -> None:
    """Raise ScriptError unless ``text`` compiles as a restricted script (see script_sandbox)."""
    compile_restricted(text, "exec")


class RestrictedEnvironment(BasePythonScriptEngineEnvironment):
    """Runs BPMN scripts and conditions in the script sandbox; services go to ``call``."""

    def __init__(self, call: ServiceCaller, sandbox: ScriptSandbox | None = None):
        super().__init__({})
        self._call = call
        self._sandbox = sandbox or shared_sandbox()

    def evaluate(self, expression, context, external_context=None):
        """Evaluate a condition or parameter expression against the task data."""
        # Modelers wrap long conditions over lines; deploy checks the stripped text, so run it too.
        return self._sandbox.evaluate(expression.strip(), {**(external_context or {}), **context})

    def execute(self, script, context, external_context=None):
        """Run a script task; the plain names it ends with flow back into the task data."""
        context.update(self._sandbox.execute(script.strip(), {**(external_context or {}), **context}))
        return True

    def call_service(self, context, operation_name=None, operation_params=None, **kwargs):
        """Call the registered handler with plain parameter values; return its JSON."""
        params = {name: p["value"] for name, p in (operation_params or {}).items()}
        return json.dumps(self._call(operation_name, params))


class ScriptEngine(PythonScriptEngine):
    """SpiffWorkflow's engine with our environment, errors that name their task, and a working
    ``call_service`` (3.2.0's own refers to an undefined name on errors).
    """

    def evaluate(self, task, expression, external_context=None):
        """Evaluate ``expression`` for ``task``; a failure names the expression and the task."""
        try:
            return self.environment.evaluate(expression, task.data, external_context)
        except ScriptError as err:
            shown = " ".join(expression.split())
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            raise _task_error(task, f"expression '{shown}'", err)  # noqa: B904 - its cause is set

    def execute(self, task, script, external_context=None):
        """Run ``script`` for ``task``; a failure names the task."""
        try:
            return self.environment.execute(script, task.data, external_context or {})
        except ScriptError as err:
            raise _task_error(task, "script", err)  # noqa: B904 - its cause is set

    def call_service(self, task, **kwargs):
        """Call a service for ``task``; errors become workflow task exceptions."""
        try:
            return self.environment.call_service(task.data, **kwargs)
        except Exception as err:  # the handler's error, shown with the task that called it
            raise self.create_task_exec_exception(task, "", err) from err


def _no_services(name: str, _params: dict[str, Any]) -> Any:
    """The services of a workflow restored only to be read: there are none."""
    raise RuntimeError(f"a workflow restored to be read never runs; it called the service {name}")


# The script engine of workflows restored to be read: they never run a script or a service.
_READING_ENGINE = ScriptEngine(RestrictedEnvironment(_no_services))


@dataclass(frozen=True)
class ReadyStep:
    """The user task a stored workflow waits on, as the console shows it."""

    task_id: str
    bpmn_id: str
    title: str
    properties: Mapping[str, str]  # the task's extension properties (its form files, ...)
    data: Mapping[str, Any]  # the task's data: take task_data() for a copy of one's own

    def task_data(self) -> dict[str, Any]:
        """A copy of the task's data that the caller may change."""
        return copy.deepcopy(dict(self.data))


@lru_cache(maxsize=READY_STEPS)
def ready_step(state: str, spec_json: str) -> ReadyStep | None:
    """The user task the workflow stored as ``state`` waits on, or None: restored once per
    stored state (workflow_to_read), so showing an unchanged order again restores nothing."""
    task = ready_user_task(workflow_to_read(state, spec_json, _READING_ENGINE))
    if task is None:
        return None
    spec = task.task_spec
    return ReadyStep(str(task.id), spec.bpmn_id, spec.bpmn_name or spec.bpmn_id,
                     dict(spec.extensions.get("properties", {})), copy.deepcopy(task.data))


def _task_error(task, what: str, err: ScriptError) -> WorkflowTaskException:
    """A task error caused by "script of task Activity_X (Name) ran longer than 2 s" (the
    message the runtime records for the instance)."""
    spec = task.task_spec
    name = f" ({spec.bpmn_name})" if spec.bpmn_name else ""
    labelled = ScriptError(f"{what} of task {spec.bpmn_id}{name} {err}")
    labelled.__cause__ = err
    failure = WorkflowTaskException(str(labelled), task=task, exception=labelled)
    failure.__cause__ = labelled
    return failure


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


def end_event_name(workflow: BpmnWorkflow) -> str | None:
    """The name (or id) of the end event a finished workflow reached, None if it reached none."""
    for task in workflow.get_tasks(state=TaskState.COMPLETED):
        spec = task.task_spec
        if isinstance(spec, EndEvent) and spec.bpmn_id:
            return spec.bpmn_name or spec.bpmn_id
    return None


# What happened, never what might: predicted tasks (MAYBE, LIKELY, FUTURE) are left out. When an
# element ran more than once (a loop), the pass that matters most to a reader wins.
_STATE_WEIGHT = {TaskState.CANCELLED: 0, TaskState.COMPLETED: 1, TaskState.WAITING: 2, TaskState.READY: 2,
                 TaskState.STARTED: 2, TaskState.ERROR: 3}


def task_states(workflow: BpmnWorkflow) -> dict[str, str]:
    """bpmn id -> state name (COMPLETED, READY, WAITING, STARTED, ERROR or CANCELLED) of every BPMN
    element the workflow reached, in the order they were first reached.

    A cancelled task counts only if it had been reached (its parent had completed): cancelling a
    workflow also cancels the branches it only predicted.
    """
    reached = [task for task in workflow.get_tasks() if task.task_spec.bpmn_id and task.state in _STATE_WEIGHT
               and (task.state != TaskState.CANCELLED
                    or (task.parent is not None and task.parent.state == TaskState.COMPLETED))]
    states: dict[str, int] = {}
    for task in sorted(reached, key=lambda task: task.last_state_change):
        bpmn_id = task.task_spec.bpmn_id
        if bpmn_id not in states or _STATE_WEIGHT[task.state] >= _STATE_WEIGHT[states[bpmn_id]]:
            states[bpmn_id] = task.state
    return {bpmn_id: TaskState.get_name(state) for bpmn_id, state in states.items()}


def set_start_data(workflow: BpmnWorkflow, data: Mapping[str, Any]) -> None:
    """Give a workflow that has not run yet its initial data: every task starts with a copy."""
    if data:
        for task in workflow.get_tasks(state=TaskState.READY):
            task.data.update(copy.deepcopy(dict(data)))
