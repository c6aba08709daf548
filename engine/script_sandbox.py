"""Admin-authored scripts and conditions: compiled under RestrictedPython, run in child processes.

RestrictedPython keeps code away from Python's internals, not from ``while True: pass`` or
``'a' * 10**10``. So the code runs in a small pool of child processes, each started fresh as
``python -I script_sandbox.py`` (never forked from the threaded parent): a child caps its own
address space (RLIMIT_AS), and the parent kills and replaces a child that runs over its time.
Task data goes in and comes back as one line of JSON over pipes, at most RESULT_LIMIT bytes.
This file imports nothing from ``engine``, so the child needs only RestrictedPython.
"""

from __future__ import annotations

import ast
import atexit
import json
import os
import re
import resource
import select
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Mapping
from functools import lru_cache
from types import CodeType
from typing import Any

from RestrictedPython import compile_restricted_eval, compile_restricted_exec, safe_builtins
from RestrictedPython.Eval import default_guarded_getitem, default_guarded_getiter
from RestrictedPython.Guards import (
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safer_getattr,
)

TIME_LIMIT = 2.0  # seconds of wall time per script or expression
MEMORY_LIMIT = 256 * 2**20  # bytes of address space per child
RESULT_LIMIT = 2**20  # bytes of JSON a script or expression hands back
EXPRESSION_LIMIT = 10_000  # characters
SCRIPT_LIMIT = 100_000  # characters
IDLE_CHILDREN = 4
STARTUP_LIMIT = 30.0  # seconds a new child may take to start
# format() and format_map() walk attribute paths written in the format string ('{0.__class__}').
UNSAFE_ATTRIBUTES = frozenset({"format", "format_map"})
DUNDER = re.compile(r"__\w+__")
# Secrets in the parent's environment (CARDFLOW_*) have no business in a child.
CHILD_ENVIRONMENT = ("LD_LIBRARY_PATH",)


class ScriptError(Exception):
    """A script or expression is not allowed, or failed when run; the message says which and why."""


def restricted_globals() -> dict[str, Any]:
    """The whitelist code runs with: safe builtins and RestrictedPython's guards, nothing else."""
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


def compile_restricted(text: str, mode: str) -> CodeType:
    """Restricted bytecode for ``text`` ("eval": an expression, "exec": a script).

    Raises ScriptError naming the line and the reason: too long, nested too deeply, a syntax
    error, str.format, a Python internal named in a string, or what RestrictedPython refuses.
    """
    what, limit = ("an expression", EXPRESSION_LIMIT) if mode == "eval" else ("a script", SCRIPT_LIMIT)
    if len(text) > limit:
        raise ScriptError(f"{what} may have at most {limit:,} characters, this one has {len(text):,}; "
                          "move the work into a service task")
    compiler = compile_restricted_eval if mode == "eval" else compile_restricted_exec
    try:
        tree = ast.parse(text, f"<{mode}>", mode)
        _refuse_unsafe_nodes(tree)
        result = compiler(tree, "<expression>" if mode == "eval" else "<script>")
    except SyntaxError as err:
        where = f"line {err.lineno}: " if err.lineno else ""
        raise ScriptError(f"{where}syntax error: {err.msg}") from None
    except ValueError as err:  # a NUL character, on Pythons before 3.11.4 (later: a SyntaxError)
        raise ScriptError(f"syntax error: {err}") from None
    except (RecursionError, MemoryError):
        raise ScriptError(f"{what} is nested too deeply to check; split it into simpler steps") from None
    if result.errors:
        raise ScriptError("; ".join(result.errors))
    return result.code


def _refuse_unsafe_nodes(tree: ast.AST) -> None:
    """Refuse str.format()/format_map() and Python internals (``__class__``) named in strings."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in UNSAFE_ATTRIBUTES:
            raise ScriptError(f"line {node.lineno}: .{node.attr}() is not allowed (a format string can "
                              "reach Python internals); join text with + or use an f-string")
        if isinstance(node, ast.Constant) and isinstance(node.value, str | bytes):
            text = node.value.decode("latin-1") if isinstance(node.value, bytes) else node.value
            found = DUNDER.search(text)
            if found:
                raise ScriptError(f"line {node.lineno}: the text names the Python internal "
                                  f"'{found.group()}', which processes must not use")


class ScriptSandbox:
    """A pool of sandbox children, safe to share between threads; ``close`` stops the idle ones."""

    def __init__(self, time_limit: float = TIME_LIMIT, memory_limit: int = MEMORY_LIMIT,
                 result_limit: int = RESULT_LIMIT, idle_children: int = IDLE_CHILDREN):
        self.time_limit = time_limit
        self.memory_limit = memory_limit
        self.result_limit = result_limit
        self._idle_children = idle_children
        self._idle: list[_Child] = []
        self._lock = threading.Lock()

    def evaluate(self, expression: str, data: Mapping[str, Any]) -> Any:
        """The value of ``expression`` over ``data``; ScriptError when it is refused or fails."""
        return self._run("eval", expression, data)

    def execute(self, script: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """Run ``script`` over ``data``; the plain (non-callable, not ``_``) names it ends with."""
        return self._run("exec", script, data)

    def close(self) -> None:
        """Stop the idle children; a later call starts new ones."""
        with self._lock:
            idle, self._idle = self._idle, []
        for child in idle:
            child.close()

    def _run(self, mode: str, code: str, data: Mapping[str, Any]) -> Any:
        """Send one request to an idle child; kill the child if it does not answer in time."""
        try:
            request = json.dumps({"mode": mode, "code": code, "data": dict(data)}, allow_nan=False)
        except (TypeError, ValueError) as err:
            raise ScriptError(f"cannot run: the task data is not plain JSON ({err})") from None
        child = self._take()
        try:
            answer = child.ask(request.encode() + b"\n", self.time_limit, self.result_limit + 100)
        except BaseException:
            child.kill()
            raise
        if answer.get("fatal"):
            child.kill()
        else:
            self._give_back(child)
        if "error" in answer:
            raise ScriptError(answer["error"])
        return answer["value"]

    def _take(self) -> _Child:
        """An idle child, or a new one."""
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return _Child(self.time_limit, self.memory_limit, self.result_limit)

    def _give_back(self, child: _Child) -> None:
        """Keep ``child`` for the next call, unless enough are idle already."""
        with self._lock:
            if len(self._idle) < self._idle_children:
                self._idle.append(child)
                return
        child.close()


class _Child:
    """One sandbox process and its two pipes, used by one thread at a time."""

    def __init__(self, time_limit: float, memory_limit: int, result_limit: int):
        self.memory_limit = memory_limit
        # stdout is read with os.read only (a deadline needs poll); stdin is buffered, so each
        # request is written whole.
        self.process = subprocess.Popen(
            [sys.executable, "-I", __file__, str(time_limit), str(memory_limit), str(result_limit)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd="/",
            env={name: os.environ[name] for name in CHILD_ENVIRONMENT if name in os.environ})
        self._poll = select.poll()
        self._poll.register(self.process.stdout, select.POLLIN)
        # Starting takes a busy machine a while; that must not count against the first script.
        try:
            self._receive(STARTUP_LIMIT, 100, "could not start the script sandbox in time")
        except BaseException:
            self.kill()
            raise

    def ask(self, request: bytes, timeout: float, max_answer: int) -> dict[str, Any]:
        """Send ``request``; the answer, or ScriptError when it is late, too large or never comes."""
        try:
            self.process.stdin.write(request)
            self.process.stdin.flush()
        except OSError:
            raise ScriptError("could not run: the script sandbox stopped; try again") from None
        return self._receive(timeout, max_answer, f"ran longer than {timeout:g} s")

    def _receive(self, timeout: float, max_answer: int, late: str) -> Any:
        """The next answer line, decoded; ScriptError(``late``) when it does not come in time."""
        deadline, chunks, size = time.monotonic() + timeout, [], 0
        while not chunks or not chunks[-1].endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._poll.poll(remaining * 1000):
                raise ScriptError(late)
            chunk = os.read(self.process.stdout.fileno(), 1 << 16)
            if not chunk:
                raise ScriptError(f"stopped the script sandbox (it may have used more than "
                                  f"{self.memory_limit // 2**20} MB of memory)")
            chunks.append(chunk)
            size += len(chunk)
            if size > max_answer:
                raise ScriptError(_too_large(max_answer))
        return json.loads(b"".join(chunks))

    def kill(self) -> None:
        """Stop the process at once and release its pipes."""
        self.process.kill()
        self._release()

    def close(self) -> None:
        """Let the process end on end-of-input (kill it if it does not), release its pipes."""
        try:
            self.process.stdin.close()
            self.process.wait(timeout=1)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
        self._release()

    def _release(self) -> None:
        """Reap the process and close both pipes."""
        self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            try:
                pipe.close()
            except OSError:
                pass


_shared: ScriptSandbox | None = None
_shared_lock = threading.Lock()


def shared_sandbox() -> ScriptSandbox:
    """The process-wide sandbox with the default limits, stopped when the interpreter exits."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = ScriptSandbox()
            atexit.register(_shared.close)
        return _shared


def _too_large(limit: int) -> str:
    """The message for a result over ``limit`` bytes."""
    return (f"returned more than {limit // 2**20 or 1} MB of data; keep large data in tables, "
            "not in the workflow")


@lru_cache(maxsize=128)
def _compiled(text: str, mode: str) -> CodeType:
    """compile_restricted, remembered: the same conditions are evaluated again and again."""
    return compile_restricted(text, mode)


def _run_request(request: dict[str, Any]) -> Any:
    """Run one request in the child: an expression's value, or the names a script leaves."""
    code = _compiled(request["code"], request["mode"])
    scope = {**request["data"], **restricted_globals()}  # the guards always win over task data
    if request["mode"] == "eval":
        return eval(code, scope)  # noqa: S307 - restricted bytecode, guarded globals
    exec(code, scope)  # noqa: S102 - restricted bytecode, guarded globals
    return {key: value for key, value in scope.items() if not key.startswith("_") and not callable(value)}


def _answer(line: bytes, memory_limit: int, result_limit: int) -> tuple[bytes, bool]:
    """The answer line to one request, and whether the child must stop after it."""
    try:
        value = _run_request(json.loads(line))
    except MemoryError:
        return json.dumps({"error": f"used more than {memory_limit // 2**20} MB of memory",
                           "fatal": True}).encode(), True
    except ScriptError as err:
        return json.dumps({"error": f"is not allowed: {err}"}).encode(), False
    except BaseException as err:  # the script's own error, reported with its line
        lines = [frame.lineno for frame in traceback.extract_tb(err.__traceback__)
                 if frame.filename in ("<expression>", "<script>") and frame.lineno]
        where = f" (line {lines[-1]})" if lines else ""
        return json.dumps({"error": f"failed: {type(err).__name__}: {err}{where}"}).encode(), False
    try:
        body = json.dumps({"value": value}, allow_nan=False).encode()
    except MemoryError:
        return json.dumps({"error": _too_large(result_limit), "fatal": True}).encode(), True
    except (TypeError, ValueError) as err:
        return json.dumps({"error": f"left a value that is not plain JSON ({err}); keep task data to "
                                    "numbers, text, true/false, lists and objects"}).encode(), False
    if len(body) > result_limit:
        return json.dumps({"error": _too_large(result_limit)}).encode(), False
    return body, False


def _limit_cpu(time_limit: float) -> None:
    """Let the next request use a little more than ``time_limit`` seconds of CPU, then SIGXCPU.

    The parent enforces the time limit; this only stops a runaway child whose parent died.
    """
    usage = resource.getrusage(resource.RUSAGE_SELF)
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = int(usage.ru_utime + usage.ru_stime + 2 * time_limit) + 1
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def main() -> None:
    """The child: cap memory, then answer one JSON request per line until the input ends."""
    time_limit, memory_limit, result_limit = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent, which stops us
    resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # whatever else writes to stdout must not corrupt the answers
    answers.write(b'"ready"\n')
    answers.flush()
    for line in sys.stdin.buffer:
        _limit_cpu(time_limit)
        answer, fatal = _answer(line, memory_limit, result_limit)
        answers.write(answer + b"\n")
        answers.flush()
        if fatal:
            return


if __name__ == "__main__":
    main()
