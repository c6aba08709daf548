"""What makes an admin's JSON Schema safe to check operators' posts with.

Validation must finish, quickly, and read nothing but the form: nesting is bounded (no
RecursionError), every ``$ref`` points inside the same document and no chain of them loops
back without descending into the data, nothing changes the base a reference resolves against
(``$id``, another ``$schema``), and every ``pattern`` compiles and cannot backtrack
catastrophically (see regex_problem). Each check answers with the reason, or None.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from re import _constants as sre
from re import _parser as sre_parser
from typing import Any
from urllib.parse import unquote

MAX_DEPTH = 32  # levels of JSON nesting; validation recurses a few frames per level
MAX_PATTERN_LENGTH = 1_000
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
# Keywords that move the base URI or name other documents: a form is one document, on its own.
FOREIGN_KEYWORDS = ("$id", "$anchor", "$dynamicRef", "$dynamicAnchor", "$recursiveRef", "$recursiveAnchor")
# Applicators that apply a subschema to the same value (a loop through them never ends).
IN_PLACE_LISTS = ("allOf", "anyOf", "oneOf")
IN_PLACE_SCHEMAS = ("not", "if", "then", "else")
REPEATS = (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT)

Path = tuple[str | int, ...]


def nodes(document: Any) -> Iterator[tuple[Path, Any]]:
    """Every value in a JSON document with its path, without recursion."""
    stack: list[tuple[Path, Any]] = [((), document)]
    while stack:
        path, node = stack.pop()
        yield path, node
        if isinstance(node, dict):
            stack.extend(((*path, key), value) for key, value in node.items())
        elif isinstance(node, list):
            stack.extend(((*path, index), value) for index, value in enumerate(node))


def depth_problem(document: Any) -> str | None:
    """Why ``document`` is nested too deeply, or None."""
    if any(len(path) > MAX_DEPTH for path, _ in nodes(document)):
        return f"it is nested more than {MAX_DEPTH} levels deep"
    return None


def schema_problem(schema: Any) -> str | None:
    """Why ``schema`` is unsafe to validate with (first reason found), or None. Call depth_problem first."""
    targets: dict[Path, Path] = {}
    for path, node in nodes(schema):
        if not isinstance(node, dict):
            continue
        where = _pointer(path)
        for keyword in FOREIGN_KEYWORDS:
            if keyword in node:
                return f"{where} uses {keyword}; a form is one document: refer with \"$ref\": \"#/...\""
        if "$schema" in node and (path or node["$schema"] != DRAFT_2020_12):
            return f"{where} sets $schema to {node['$schema']!r}; only {DRAFT_2020_12} at the top is allowed"
        if isinstance(node.get("$ref"), str):
            target = _resolve(schema, node["$ref"])
            if target is None:
                return (f"{where} refers to {node['$ref'][:100]!r}; a $ref must point inside the same "
                        "form (\"#\" or \"#/$defs/...\")")
            targets[path] = target
        patterns = [node["pattern"]] if isinstance(node.get("pattern"), str) else []
        if isinstance(node.get("patternProperties"), dict):
            patterns += list(node["patternProperties"])
        for pattern in patterns:
            problem = regex_problem(pattern)
            if problem:
                return f"{where}: the pattern {pattern[:100]!r} {problem}"
    return _loop_problem(schema, targets)


def _pointer(path: Path) -> str:
    """The JSON pointer of ``path``, as a form author reads it ("#/properties/name")."""
    return "#" + "".join(f"/{str(part).replace('~', '~0').replace('/', '~1')}" for part in path)


def _resolve(schema: Any, reference: str) -> Path | None:
    """The path a local ``$ref`` ("#" or "#/a/b") points to, or None when it points elsewhere or nowhere."""
    if reference != "#" and not reference.startswith("#/"):
        return None
    path: list[str | int] = []
    node = schema
    for raw in reference[2:].split("/") if reference != "#" else []:
        part = unquote(raw).replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            path.append(part)
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            path.append(int(part))
            node = node[int(part)]
        else:
            return None
    return tuple(path)


def _in_place(path: Path, node: dict, targets: dict[Path, Path]) -> list[Path]:
    """Subschemas that apply to the same value as the schema at ``path``."""
    following = [target for target in [targets.get(path)] if target is not None]
    for keyword in IN_PLACE_LISTS:
        if isinstance(node.get(keyword), list):
            following += [(*path, keyword, index) for index in range(len(node[keyword]))]
    following += [(*path, keyword) for keyword in IN_PLACE_SCHEMAS if keyword in node]
    if isinstance(node.get("dependentSchemas"), dict):
        following += [(*path, "dependentSchemas", key) for key in node["dependentSchemas"]]
    return following


def _loop_problem(schema: Any, targets: dict[Path, Path]) -> str | None:
    """Why a chain of $ref (and allOf, not, ...) would loop on the same value for ever, or None."""
    graph = {path: _in_place(path, node, targets) for path, node in nodes(schema) if isinstance(node, dict)}
    done: set[Path] = set()
    for start in targets:
        on_path, stack = {start}, [(start, iter(graph.get(start, [])))]
        while stack:
            path, following = stack[-1]
            step = next(following, None)
            if step is None:
                stack.pop()
                on_path.discard(path)
                done.add(path)
            elif step in on_path:
                return (f"{_pointer(start)}: its $ref leads back to {_pointer(step)} without descending into "
                        "the data, so checking a post would never end")
            elif step not in done:
                on_path.add(step)
                stack.append((step, iter(graph.get(step, []))))
    return None


def regex_problem(pattern: str) -> str | None:
    """Why ``pattern`` is not a safe regular expression for a form, or None.

    Refused: what does not compile, back-references, and a repeat (max above 1) around a part
    that can match in more than one way (a variable repeat such as ``a+`` or ``a?``, or an
    alternation), which makes a non-matching text take exponential time: ``(a+)+``, ``(a|aa)+``,
    ``(.*a){20}``.
    """
    if len(pattern) > MAX_PATTERN_LENGTH:
        return f"is {len(pattern):,} characters long; the limit is {MAX_PATTERN_LENGTH:,}"
    try:
        re.compile(pattern)
        return _backtracking(sre_parser.parse(pattern), inside_repeat=False)
    except re.error as err:
        return f"is not a valid regular expression: {err}"
    except (RecursionError, OverflowError):
        return "is nested too deeply"


def _backtracking(items: Any, inside_repeat: bool) -> str | None:
    """Why the parsed ``items`` can backtrack catastrophically, or None."""
    for op, argument in items:
        if op in (sre.GROUPREF, sre.GROUPREF_EXISTS):
            return "uses a back-reference, which can take exponential time; match without one"
        if op in REPEATS:
            low, high, body = argument
            if inside_repeat and low != high:
                return ("repeats a part that can itself repeat a varying number of times, which can take "
                        "exponential time; write it so each character can be matched only one way")
            children = [body]
            inside = inside_repeat or high > 1
        elif op is sre.BRANCH:
            if inside_repeat:
                return ("repeats an alternation (a|b...), which can take exponential time; use a character "
                        "class such as [ab] or make the choices start differently")
            children, inside = argument[1], inside_repeat
        elif op is sre.SUBPATTERN:
            children, inside = [argument[3]], inside_repeat
        elif op in (sre.ASSERT, sre.ASSERT_NOT):
            children, inside = [argument[1]], inside_repeat
        elif op is sre.ATOMIC_GROUP:
            children, inside = [argument], inside_repeat
        else:
            continue
        for child in children:
            problem = _backtracking(child, inside)
            if problem:
                return problem
    return None
