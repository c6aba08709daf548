"""Deployment: processes and option scripts become immutable, numbered versions.

Everything is validated before anything is stored: one bad file refuses the whole deploy and
the versions in force stay current. Redeploying unchanged content stores nothing. Functions
here add and flush rows; the caller (CLI, admin view) owns the transaction and commits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.deploy_errors import DeployError, Problem
from engine.option_scripts import read_option_script
from engine.process_validation import ValidatedProcess, validate_process
from engine.store import AuditEvent, Definition, OptionVersion

__all__ = [
    "DeployError", "Problem", "ValidatedOptions", "ValidatedProcess", "current_definition", "current_options",
    "deploy_all", "deploy_options", "deploy_process", "store_options", "validate_options", "validate_process",
]

# Checks an option set's values: (option name, reason) per problem, [] when all is well.
OptionValidator = Callable[[dict], list[tuple[str, str]]]


@dataclass(frozen=True)
class ValidatedOptions:
    """An option script that passed parsing and its validator, ready to store."""

    name: str
    source: str
    values: dict[str, Any]
    content_hash: str


def validate_options(path: Path, validators: Mapping[str, OptionValidator]) -> ValidatedOptions:
    """Parse an option script (never running it) and check its values; DeployError with lines."""
    file, name = str(path), path.name
    validator = validators.get(name)
    if validator is None:
        known = ", ".join(sorted(validators)) or "none"
        reason = f"no option validator for '{name}'; known option scripts: {known}"
        raise DeployError([Problem(file, None, reason)])
    data = path.read_bytes()
    try:
        source = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DeployError([Problem(file, None, "option scripts must be UTF-8")]) from err
    script = read_option_script(source, file)
    problems = [
        Problem(file, script.lines.get(option), f"{option}: {reason}")
        for option, reason in validator(script.values)
    ]
    if problems:
        raise DeployError(problems)
    return ValidatedOptions(name, source, script.values, hashlib.sha256(data).hexdigest())


def _next_version(session: Session, model, key_column, key: str, content_hash: str):
    """The current row when its content is ``content_hash`` (nothing to do), else the next number.

    Only the current version counts: going back to older content makes a new version, so what
    an admin deployed last is always what new instances run.
    """
    current = session.scalar(select(model).where(key_column == key).order_by(model.version.desc()).limit(1))
    if current is not None and current.content_hash == content_hash:
        return current, None
    return None, (current.version if current else 0) + 1


def _record(session: Session, row: Definition | OptionVersion, actor: str, what: dict) -> None:
    """Store a new version and the audit event that says who deployed it."""
    session.add(row)
    session.add(AuditEvent(actor=actor, action="deploy",
                           detail={**what, "version": row.version, "content_hash": row.content_hash}))
    session.flush()


def deploy_process(session: Session, validated: ValidatedProcess, actor: str) -> tuple[Definition, bool]:
    """Store a validated process as its next version; the current row if the content is unchanged."""
    current, version = _next_version(session, Definition, Definition.process_id, validated.process_id,
                                     validated.content_hash)
    if current is not None:
        return current, False
    definition = Definition(
        process_id=validated.process_id,
        name=validated.name,
        version=version,
        content_hash=validated.content_hash,
        bpmn_xml=validated.bpmn,
        forms=validated.forms,
        spec_json=validated.spec_json,
        deployed_by=actor,
    )
    _record(session, definition, actor, {"process_id": definition.process_id})
    return definition, True


def store_options(session: Session, validated: ValidatedOptions, actor: str) -> tuple[OptionVersion, bool]:
    """Store validated options as their next version; the current row if the content is unchanged."""
    current, version = _next_version(session, OptionVersion, OptionVersion.name, validated.name,
                                     validated.content_hash)
    if current is not None:
        return current, False
    options = OptionVersion(
        name=validated.name,
        version=version,
        content_hash=validated.content_hash,
        source=validated.source,
        values=validated.values,
        deployed_by=actor,
    )
    _record(session, options, actor, {"option_script": options.name})
    return options, True


def deploy_options(
    session: Session, path: Path, validators: Mapping[str, OptionValidator], actor: str
) -> tuple[OptionVersion, bool]:
    """Validate one option script and store it (see validate_options and store_options)."""
    return store_options(session, validate_options(path, validators), actor)


def deploy_all(
    session: Session,
    root: Path,
    operators: Collection[str],
    option_validators: Mapping[str, OptionValidator],
    actor: str,
    check_only: bool = False,
    widgets: Collection[str] | None = None,
) -> list[str]:
    """Validate root/processes/*.bpmn and root/options/*, then deploy them all or nothing.

    Raises DeployError with every problem of every file; returns one line per file saying what
    happened ("... v2 deployed", "... unchanged (v1)", or "... valid" when ``check_only``).
    """
    processes: list[tuple[Path, ValidatedProcess]] = []
    option_sets: list[ValidatedOptions] = []
    problems: list[Problem] = []
    for path in sorted((root / "processes").glob("*.bpmn")):
        try:
            processes.append((path, validate_process(path, root / "forms", operators, widgets)))
        except DeployError as err:
            problems += err.problems
    for path in _option_files(root / "options"):
        try:
            option_sets.append(validate_options(path, option_validators))
        except DeployError as err:
            problems += err.problems
    problems += _duplicate_ids(processes)
    if problems:
        raise DeployError(problems)
    if check_only:
        names = [item.process_id for _, item in processes] + [item.name for item in option_sets]
        return [f"{name} valid" for name in names]
    lines = []
    for _, process in processes:
        definition, created = deploy_process(session, process, actor)
        lines.append(_outcome(definition.process_id, definition.version, created))
    for option_set in option_sets:
        options, created = store_options(session, option_set, actor)
        lines.append(_outcome(options.name, options.version, created))
    return lines


def _option_files(folder: Path) -> list[Path]:
    """Every option script in ``folder``; dot files (editor and VCS droppings) are not scripts."""
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.iterdir() if path.is_file() and not path.name.startswith("."))


def _duplicate_ids(processes: list[tuple[Path, ValidatedProcess]]) -> list[Problem]:
    """Two files defining the same process id would mix their versions into one history."""
    first_file: dict[str, Path] = {}
    problems = []
    for path, process in processes:
        if process.process_id in first_file:
            other = first_file[process.process_id].name
            reason = f"process id {process.process_id} is already defined in {other}; use another id"
            problems.append(Problem(str(path), None, reason))
        first_file.setdefault(process.process_id, path)
    return problems


def _outcome(name: str, version: int, created: bool) -> str:
    """One line of deploy output."""
    return f"{name} v{version} deployed" if created else f"{name} unchanged (v{version})"


def current_definition(session: Session, process_id: str) -> Definition | None:
    """The newest deployed version of a process, or None if it was never deployed."""
    return session.scalar(
        select(Definition)
        .where(Definition.process_id == process_id)
        .order_by(Definition.version.desc())
        .limit(1)
    )


def current_options(session: Session, name: str) -> OptionVersion | None:
    """The newest deployed version of an option script, or None if it was never deployed."""
    return session.scalar(
        select(OptionVersion)
        .where(OptionVersion.name == name)
        .order_by(OptionVersion.version.desc())
        .limit(1)
    )
