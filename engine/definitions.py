"""Deployment: processes and option scripts become immutable, numbered versions.

Everything is validated before anything is stored: one bad file refuses the whole deploy and
the versions in force stay current. Redeploying unchanged content stores nothing. Functions
here add and flush rows; the caller (CLI, admin view) owns the transaction and commits.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.deploy_errors import DeployError, Problem
from engine.option_scripts import read_option_script
from engine.process_validation import (
    ValidatedProcess,
    check_form_file,
    form_kind,
    validate_process,
    validate_process_bytes,
)
from engine.store import AuditEvent, Definition, FormVersion, OptionVersion
from engine.versions import (
    KINDS,
    VersionRow,
    current_definition,
    current_forms,
    current_options,
    current_rows,
    get_version,
    point_at,
)

__all__ = [
    "DeployError", "Problem", "ValidatedForm", "ValidatedOptions", "ValidatedProcess", "current_definition",
    "current_options", "deploy_all", "deploy_files", "deploy_options", "deploy_process", "store_form",
    "store_options", "validate_form", "validate_options", "validate_process",
]
FORM_NAME = re.compile(r"[A-Za-z0-9_-]{1,150}\.(schema|uischema)\.json")

# Checks an option set's values: (option name, reason) per problem, [] when all is well.
OptionValidator = Callable[[dict], list[tuple[str, str]]]


@dataclass(frozen=True)
class ValidatedForm:
    """A form file that passed its checks, ready to store."""

    name: str
    body: str
    content_hash: str


@dataclass(frozen=True)
class ValidatedOptions:
    """An option script that passed parsing and its validator, ready to store."""

    name: str
    source: str
    values: dict[str, Any]
    content_hash: str


def validate_options(path: Path, validators: Mapping[str, OptionValidator],
                     file: str | None = None) -> ValidatedOptions:
    """Parse an option script file (never running it) and check its values; DeployError with lines."""
    return validate_option_source(path.name, path.read_bytes(), validators, file or str(path))


def validate_option_source(name: str, data: bytes, validators: Mapping[str, OptionValidator],
                           file: str | None = None) -> ValidatedOptions:
    """Parse the text of option set ``name`` and check its values; DeployError with lines."""
    file = file or name
    validator = validators.get(name)
    if validator is None:
        known = ", ".join(sorted(validators)) or "none"
        reason = f"no option validator for '{name}'; known option scripts: {known}"
        raise DeployError([Problem(file, None, reason)])
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


def _next_version(session: Session, kind: str, name: str, content_hash: str):
    """The current row when its content is ``content_hash`` (nothing to do), else the next number.

    Only the current version counts: going back to older content makes a new version, so what
    an admin deployed last is always what new instances run.
    """
    model, key = KINDS[kind]
    current = get_version(session, kind, name)
    if current is not None and current.content_hash == content_hash:
        return current, None
    newest = session.scalar(select(func.max(model.version)).where(key == name))
    return None, (newest or 0) + 1


def _record(session: Session, kind: str, name: str, row: VersionRow, actor: str) -> None:
    """Store a new version, make it current, and record who deployed it."""
    session.add(row)
    session.flush()
    point_at(session, kind, name, row.version, actor)
    session.add(AuditEvent(actor=actor, action="deploy",
                           detail={"kind": kind, "name": name, "version": row.version,
                                   "content_hash": row.content_hash}))


def deploy_process(session: Session, validated: ValidatedProcess, actor: str) -> tuple[Definition, bool]:
    """Store a validated process as its next version; the current row if the content is unchanged."""
    current, version = _next_version(session, "process", validated.process_id, validated.content_hash)
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
    _record(session, "process", definition.process_id, definition, actor)
    return definition, True


def store_options(session: Session, validated: ValidatedOptions, actor: str) -> tuple[OptionVersion, bool]:
    """Store validated options as their next version; the current row if the content is unchanged."""
    current, version = _next_version(session, "option", validated.name, validated.content_hash)
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
    _record(session, "option", options.name, options, actor)
    return options, True


def deploy_options(
    session: Session, path: Path, validators: Mapping[str, OptionValidator], actor: str
) -> tuple[OptionVersion, bool]:
    """Validate one option script and store it (see validate_options and store_options)."""
    return store_options(session, validate_options(path, validators), actor)


def validate_form(name: str, body: bytes, file: str | None = None) -> ValidatedForm:
    """Check one form file (a JSON Schema or a UI schema, by its name); DeployError with the reason."""
    file = file or name
    kind = form_kind(name)
    if kind is None or not _plain_form_name(name):
        raise DeployError([Problem(file, None, "a form file is named <name>.schema.json (JSON Schema) or "
                                               "<name>.uischema.json (UI schema): letters, digits, _ and -")])
    reason = check_form_file(name, body, kind)
    if reason:
        raise DeployError([Problem(file, None, reason)])
    return ValidatedForm(name, body.decode("utf-8"), hashlib.sha256(body).hexdigest())


def store_form(session: Session, validated: ValidatedForm, actor: str) -> tuple[FormVersion, bool]:
    """Store a validated form as its next version; the current row if the content is unchanged."""
    current, version = _next_version(session, "form", validated.name, validated.content_hash)
    if current is not None:
        return current, False
    form = FormVersion(name=validated.name, version=version, content_hash=validated.content_hash,
                       body=validated.body, deployed_by=actor)
    _record(session, "form", form.name, form, actor)
    return form, True


def deploy_all(
    session: Session,
    root: Path,
    operators: Collection[str],
    option_validators: Mapping[str, OptionValidator],
    actor: str,
    check_only: bool = False,
    widgets: Collection[str] | None = None,
) -> list[str]:
    """Validate root/forms/*.json, root/processes/*.bpmn and root/options/*, then deploy them all
    or nothing (see deploy_files)."""
    paths = sorted((root / "forms").glob("*.json")) + sorted((root / "processes").glob("*.bpmn"))
    paths += _option_files(root / "options")
    return deploy_files(session, paths, operators, option_validators, actor, check_only, widgets, root=root)


def deploy_files(
    session: Session,
    paths: Sequence[Path],
    operators: Collection[str],
    option_validators: Mapping[str, OptionValidator],
    actor: str,
    check_only: bool = False,
    widgets: Collection[str] | None = None,
    root: Path | None = None,
) -> list[str]:
    """Validate the given files (``.json`` forms, ``.bpmn`` processes, other files option scripts),
    then deploy them all or nothing (see deploy_sources)."""
    sources = [Source(path.name, path.read_bytes(), _display_name(path, root)) for path in paths]
    return deploy_sources(session, sources, operators, option_validators, actor, check_only, widgets)


@dataclass(frozen=True)
class Source:
    """A file to deploy, from disk, an upload or an editor: its plain name, bytes, and how to name it
    in problems. ``.json`` is a form, ``.bpmn`` a process, anything else an option script."""

    name: str
    data: bytes
    file: str

    @property
    def kind(self) -> str:
        """form, process or option, from the name."""
        return {".json": "form", ".bpmn": "process"}.get(Path(self.name).suffix, "option")


def deploy_sources(
    session: Session,
    sources: Sequence[Source],
    operators: Collection[str],
    option_validators: Mapping[str, OptionValidator],
    actor: str,
    check_only: bool = False,
    widgets: Collection[str] | None = None,
) -> list[str]:
    """Validate ``sources``, then deploy them all or nothing.

    A process binds the forms given here first, then the deployed ones; a current process that
    binds a form deployed here, but is not itself given, gets a new version bound to the new form
    (so new orders see it). Raises DeployError with every problem of every file; returns one line
    per version ("... v2 deployed", "... unchanged (v1)", or "... valid" when ``check_only``).
    """
    forms: list[ValidatedForm] = []
    processes: list[ValidatedProcess] = []
    option_sets: list[ValidatedOptions] = []
    problems: list[Problem] = []
    library = {**current_forms(session), **{s.name: s.data for s in sources if s.kind == "form"}}
    for source in sources:
        try:
            if source.kind == "form":
                forms.append(validate_form(source.name, source.data, source.file))
            elif source.kind == "process":
                processes.append(validate_process_bytes(source.data, source.file, library, operators,
                                                        widgets))
            else:
                option_sets.append(validate_option_source(source.name, source.data, option_validators,
                                                          source.file))
        except DeployError as err:
            problems += err.problems
    problems += _duplicate_ids(processes, [s.file for s in sources if s.kind == "process"])
    if problems:
        raise DeployError(problems)
    if check_only:
        names = ([item.name for item in forms] + [item.process_id for item in processes]
                 + [item.name for item in option_sets])
        return [f"{name} valid" for name in names]
    lines = []
    for form in forms:
        row, created = store_form(session, form, actor)
        lines.append(_outcome(row.name, row.version, created))
    given = {item.process_id for item in processes}
    processes += _rebound(session, {form.name for form in forms}, given, library, operators, widgets)
    for process in processes:
        definition, created = deploy_process(session, process, actor)
        lines.append(_outcome(definition.process_id, definition.version, created))
    for option_set in option_sets:
        options, created = store_options(session, option_set, actor)
        lines.append(_outcome(options.name, options.version, created))
    return lines


def process_check(session: Session, source: Source, operators: Collection[str],
                  widgets: Collection[str] | None) -> tuple[ValidatedProcess, int | None]:
    """Validate one process against the deployed forms: the validated process and the current
    version it equals (None when deploying it would make a new version); DeployError if bad."""
    validated = validate_process_bytes(source.data, source.file, current_forms(session), operators, widgets)
    current = current_definition(session, validated.process_id)
    same = current is not None and current.content_hash == validated.content_hash
    return validated, current.version if same else None


def _rebound(session: Session, form_names: set[str], given: set[str], library: Mapping[str, bytes],
             operators: Collection[str], widgets: Collection[str] | None) -> list[ValidatedProcess]:
    """Current processes (other than ``given``) that bind one of ``form_names``, validated anew
    against ``library``; a process the new form breaks refuses the whole deploy."""
    rebound = []
    for definition in current_rows(session, "process"):
        if definition.process_id in given or not form_names & set(definition.forms):
            continue
        file = f"processes/{definition.process_id}.bpmn (deployed v{definition.version})"
        rebound.append(validate_process_bytes(definition.bpmn_xml.encode("utf-8"), file, library,
                                              operators, widgets))
    return rebound


def _display_name(path: Path, root: Path | None) -> str:
    """How problems name a file: relative to the project root when deploying one."""
    if root is not None and path.is_relative_to(root):
        return str(path.relative_to(root))
    return str(path)


def _plain_form_name(name: str) -> bool:
    """Form names are file names of letters, digits, _ and - (they end up in URLs and pickers)."""
    return FORM_NAME.fullmatch(name) is not None


def _option_files(folder: Path) -> list[Path]:
    """Every option script in ``folder``; dot files (editor and VCS droppings) are not scripts."""
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.iterdir() if path.is_file() and not path.name.startswith("."))


def _duplicate_ids(processes: list[ValidatedProcess], files: list[str]) -> list[Problem]:
    """Two files defining the same process id would mix their versions into one history."""
    first_file: dict[str, str] = {}
    problems = []
    for process, file in zip(processes, files, strict=False):
        if process.process_id in first_file:
            reason = (f"process id {process.process_id} is already defined in "
                      f"{first_file[process.process_id]}; use another id")
            problems.append(Problem(file, None, reason))
        first_file.setdefault(process.process_id, file)
    return problems


def _outcome(name: str, version: int, created: bool) -> str:
    """One line of deploy output."""
    return f"{name} v{version} deployed" if created else f"{name} unchanged (v{version})"
