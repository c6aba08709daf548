"""Option scripts: Python-looking files of ``name = literal`` lines, read as data, never run.

Admins edit them like a settings file (comments welcome). Only the syntax tree is inspected and
values go through ``ast.literal_eval``, so nothing in the file can execute, however it is written.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from typing import Any

from engine.deploy_errors import DeployError, Problem


@dataclass(frozen=True)
class OptionScript:
    """The values of an option script and the line where each name is assigned."""

    values: dict[str, Any]
    lines: dict[str, int]


def read_option_script(text: str, filename: str) -> OptionScript:
    """Parse an option script into values and assignment lines; raise DeployError on any problem."""
    try:
        module = ast.parse(text, filename=filename)
    except SyntaxError as err:
        raise DeployError([Problem(filename, err.lineno, f"syntax error: {err.msg}")]) from err
    values: dict[str, Any] = {}
    lines: dict[str, int] = {}
    problems = []
    for statement in module.body:
        if _is_docstring(statement):
            continue
        try:
            name, value = _assignment(statement)
        except ValueError as err:
            problems.append(Problem(filename, statement.lineno, str(err)))
            continue
        if name in values:
            problems.append(Problem(filename, statement.lineno,
                                    f"'{name}' is already set on line {lines[name]}; set each option once"))
            continue
        values[name], lines[name] = value, statement.lineno
    if problems:
        raise DeployError(problems)
    return OptionScript(values, lines)


def parse_option_script(text: str, filename: str) -> dict[str, Any]:
    """The values of an option script (see read_option_script); raise DeployError on any problem."""
    return read_option_script(text, filename).values


def _assignment(statement: ast.stmt) -> tuple[str, Any]:
    """``(name, value)`` of a ``name = literal`` statement; ValueError saying what else it is."""
    if not isinstance(statement, ast.Assign):
        raise ValueError(f"only 'name = value' lines are allowed, not {_describe(statement)}")
    if len(statement.targets) != 1 or not isinstance(statement.targets[0], ast.Name):
        raise ValueError("assign one plain name per line (no 'a = b = 1', 'a, b = ...' or 'a.b = ...')")
    name = statement.targets[0].id
    if name.startswith("_"):
        raise ValueError(f"option names must not start with '_': '{name}'")
    try:
        value = ast.literal_eval(statement.value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as err:
        raise ValueError(
            f"the value of '{name}' must be a literal (number, string, True/False, list), "
            f"not {_describe(statement.value)}"
        ) from err
    if not _plain(value):
        raise ValueError(f"the value of '{name}' must be a number, string, True/False or a list of those")
    return name, value


def _is_docstring(statement: ast.stmt) -> bool:
    """A bare string line documents the file, like a docstring; it is skipped, never evaluated."""
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str)
    )


def _plain(value: Any) -> bool:
    """True for the JSON-friendly literals options may hold: scalars and lists of them."""
    if value is None or isinstance(value, bool | int | float | str):
        return True
    return isinstance(value, list) and all(_plain(item) and not isinstance(item, list) for item in value)


def _describe(node: ast.AST) -> str:
    """A short human name for a syntax node, for error messages."""
    names = {
        ast.Call: "a function call", ast.Import: "an import", ast.ImportFrom: "an import",
        ast.Attribute: "an attribute access", ast.AugAssign: "an augmented assignment ('+=' etc.)",
        ast.AnnAssign: "an annotated assignment", ast.Expr: "a bare expression",
        ast.Name: "a variable reference", ast.BinOp: "a calculation",
        ast.FunctionDef: "a function definition", ast.Lambda: "a lambda", ast.Subscript: "a subscript",
    }
    for kind, text in names.items():
        if isinstance(node, kind):
            return text
    return f"a {type(node).__name__} statement" if isinstance(node, ast.stmt) else f"a {type(node).__name__}"


def with_values(text: str, values: dict[str, Any], filename: str) -> str:
    """``text`` with each option's value replaced by ``values`` (as a literal), comments and layout
    kept; options the text lacks are appended. The result reads back to ``values``."""
    script = read_option_script(text, filename)
    module = ast.parse(text, filename=filename)
    lines = text.splitlines(keepends=True)
    # Replace from the bottom up so earlier positions stay valid.
    assignments = [s for s in module.body if isinstance(s, ast.Assign) and s.targets[0].id in values]
    for statement in sorted(assignments, key=lambda s: s.lineno, reverse=True):
        value = statement.value
        start, end = value.lineno - 1, value.end_lineno - 1
        head, tail = lines[start][:value.col_offset], lines[end][value.end_col_offset:]
        lines[start:end + 1] = [head + _literal(values[statement.targets[0].id]) + tail]
    missing = [name for name in values if name not in script.values]
    if missing and lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    lines += [f"{name} = {_literal(values[name])}\n" for name in missing]
    return "".join(lines)


def _literal(value: Any) -> str:
    """A value as the literal an admin would write: True, 8, "text", ["a", "b"]."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON string escapes are Python's too
    if isinstance(value, list):
        return "[" + ", ".join(_literal(item) for item in value) + "]"
    return repr(value)

