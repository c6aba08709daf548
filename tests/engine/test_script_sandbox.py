"""Scripts and conditions run in the sandbox: bounded in time, memory and result size, thread safe."""

from __future__ import annotations

import gc
import shutil
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException

from engine import spiff
from engine.bootstrap import Services
from engine.process_validation import validate_process
from engine.script_sandbox import ScriptError, ScriptSandbox
from tests.conftest import make_settings, start_services
from tests.engine.test_hostile_authoring import edited_text, with_script_task, write
from tests.integration.flow import PROCESS, settle

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def sandbox() -> Iterator[ScriptSandbox]:
    """A sandbox with a short time limit, so runaway tests stay quick."""
    pool = ScriptSandbox(time_limit=0.5)
    yield pool
    pool.close()


@pytest.fixture
def patient() -> Iterator[ScriptSandbox]:
    """A sandbox with a long time limit: memory and size tests must not stop on time on a busy machine."""
    pool = ScriptSandbox(time_limit=20)
    yield pool
    pool.close()


def test_values_flow_in_and_scripts_hand_back_their_plain_names(sandbox):
    assert sandbox.evaluate('action == "issue"', {"action": "issue"}) is True
    assert sandbox.evaluate('order["order_id"]', {"order": {"order_id": 42}}) == 42
    script = "total = count * 2\ndef helper():\n    return 1"
    assert sandbox.execute(script, {"count": 3}) == {"count": 3, "total": 6}


def test_an_endless_loop_is_stopped_and_the_sandbox_goes_on(sandbox):
    began = time.monotonic()
    with pytest.raises(ScriptError, match=r"^ran longer than 0.5 s$"):
        sandbox.execute("while True:\n    pass", {})
    assert time.monotonic() - began < 2
    with pytest.raises(ScriptError, match="ran longer than 0.5 s"):
        sandbox.evaluate("sum(range(10**12)) > 0", {})
    assert sandbox.evaluate("1 + 1", {}) == 2


@pytest.mark.parametrize("script", ["x = 'a' * 10**10", "x = [0] * 10**9",
                                    "x = []\nwhile True:\n    x.append('a' * 10**6)"])
def test_a_memory_bomb_is_stopped_at_the_memory_limit(patient, script):
    with pytest.raises(ScriptError, match=r"^used more than 256 MB of memory$"):
        patient.execute(script, {})
    assert patient.execute("y = 1", {}) == {"y": 1}


@pytest.mark.parametrize("run", [
    lambda pool: pool.execute("x = 'a' * (2 * 2**20)", {}),
    lambda pool: pool.execute("x = 'a' * 10**8", {}),
    lambda pool: pool.evaluate("[1] * 10**6", {}),
])
def test_a_result_over_one_megabyte_is_refused(patient, run):
    with pytest.raises(ScriptError, match="returned more than 1 MB of data; keep large data in tables"):
        run(patient)


def test_only_plain_json_goes_in_and_comes_out(sandbox):
    with pytest.raises(ScriptError, match="cannot run: the task data is not plain JSON"):
        sandbox.evaluate("1", {"picked": {1, 2}})
    with pytest.raises(ScriptError, match="cannot run: the task data is not plain JSON"):
        sandbox.evaluate("1", {"ratio": float("nan")})
    with pytest.raises(ScriptError, match="left a value that is not plain JSON .*set"):
        sandbox.execute("picked = {1, 2}", {})


def test_a_failing_script_reports_its_error_and_line(sandbox):
    with pytest.raises(ScriptError, match=r"^failed: NameError: name 'missing' is not defined \(line 2\)$"):
        sandbox.execute("x = 1\ny = missing", {})
    with pytest.raises(ScriptError, match="failed: RecursionError"):
        sandbox.execute("def f():\n    return f()\nf()", {})
    with pytest.raises(ScriptError, match="failed: SystemExit"):
        sandbox.execute("raise SystemExit", {})


@pytest.mark.parametrize("code", ["'{0.__class__}'.format(x)", "'{a}'.format_map(x)", "().__class__",
                                  "x['__class__']"])
def test_code_deploy_would_refuse_is_refused_when_run(sandbox, code):
    with pytest.raises(ScriptError, match="^is not allowed: "):
        sandbox.evaluate(code, {"x": {}})


def test_the_guards_win_over_task_data_with_their_names(sandbox):
    assert sandbox.evaluate("x[0]", {"x": [5], "_getitem_": "replaced"}) == 5


def test_threads_share_the_pool_and_each_gets_its_own_answer(sandbox):
    results: dict[int, list[int]] = {}

    def work(number: int) -> None:
        results[number] = [sandbox.evaluate("n * 10 + i", {"n": number, "i": i}) for i in range(20)]

    threads = [threading.Thread(target=work, args=(number,)) for number in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {number: [number * 10 + i for i in range(20)] for number in range(8)}


def test_a_runaway_script_does_not_hold_up_another_thread(sandbox):
    errors: list[Exception] = []

    def runaway() -> None:
        try:
            sandbox.execute("while True:\n    pass", {})
        except ScriptError as error:
            errors.append(error)

    thread = threading.Thread(target=runaway)
    thread.start()
    assert sandbox.evaluate("2 * 21", {}) == 42
    # Answered while the runaway still runs (it is stopped at 0.5 s): not queued behind it. No
    # wall-clock bound: on a loaded machine any fixed one fails for the wrong reason.
    assert not errors
    thread.join()
    assert [str(error) for error in errors] == ["ran longer than 0.5 s"]


def test_closing_the_pool_stops_its_children_cleanly():
    pool = ScriptSandbox()
    threads = [threading.Thread(target=pool.evaluate, args=("1", {})) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pool.close()
        gc.collect()
    assert pool.evaluate("1", {}) == 1  # a closed pool starts children again when asked
    pool.close()


def test_a_runaway_condition_fails_its_gateway_with_the_task_named(tmp_path, real_bpmn, forms_dir, operators,
                                                                    sandbox):
    text = edited_text(real_bpmn, ('action == "issue"', "sum(range(10**12)) &gt; 0"))
    spec_json = validate_process(write(tmp_path, text), forms_dir, operators).spec_json
    engine = spiff.ScriptEngine(spiff.RestrictedEnvironment(lambda name, params: {"order_id": 1}, sandbox))
    workflow = spiff.new_workflow(spec_json, engine)
    workflow.do_engine_steps()
    task = spiff.ready_user_task(workflow)
    task.data["action"] = "issue"
    task.run()
    with pytest.raises(WorkflowTaskException) as failed:
        workflow.do_engine_steps()
    assert str(failed.value.__cause__) == ("expression 'sum(range(10**12)) > 0' of task "
                                           "Gateway_IssueOrCancel (Issue or cancel?) ran longer than 0.5 s")


def hostile_services(tmp_path: Path, real_bpmn: Path, script: str) -> Services:
    """The product with the shipped process and "HostileProcess" (a script task running ``script``)
    deployed, on one runner thread: a second instance runs only if the first one's thread is free."""
    source = tmp_path / "source"
    for folder in ("processes", "forms", "options"):
        shutil.copytree(REPO / folder, source / folder)
    text = with_script_task(real_bpmn, script)
    for attribute in ("<bpmn:process id=", "bpmnElement="):
        text = text.replace(f'{attribute}"TempCardsBoProcIssueMultiple"', f'{attribute}"HostileProcess"')
    (source / "processes" / "HostileProcess.bpmn").write_text(text)
    settings = replace(make_settings(tmp_path / "instance"), source_path=source, runner_threads=1)
    return start_services(settings)


@pytest.mark.parametrize(("script", "reason"), [
    ("while True:\n    pass", "ran longer than 2 s"),
    ("x = 'a' * 10**10", "used more than 256 MB of memory"),
    ("x = 'a' * 10**7", "returned more than 1 MB of data"),
])
def test_a_runaway_script_stops_its_instance_and_frees_the_runner(tmp_path, real_bpmn, script, reason):
    services = hostile_services(tmp_path, real_bpmn, script)
    try:
        for attempt in ("start", "retry"):
            began = time.monotonic()
            if attempt == "start":
                hostile = services.runtime.start("HostileProcess", "op")
            else:
                services.runtime.retry(hostile, "op")
            other = services.runtime.start(PROCESS, "op")  # queued behind it on the one runner thread
            assert services.runner.wait(hostile, timeout=30)
            view = services.runtime.view(hostile)
            assert view.status == "error"
            assert view.error.startswith(f"script of task Activity_Prepare (Prepare) {reason}")
            assert time.monotonic() - began < 8
            assert settle(services, other).bpmn_id == "Activity_SearchCards"
            assert services.runtime.state_size(hostile) < 50_000
    finally:
        services.close()
