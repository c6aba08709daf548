"""Deployment: processes and option scripts become immutable, numbered versions.

Everything is validated before anything is stored: one bad file refuses the whole deploy and
the versions in force stay current. Redeploying unchanged content stores nothing. Functions
here add and flush rows; the caller (CLI, admin view) owns the transaction and commits.
A stored version never changes, so what runs it reads its row once (DeployedVersions).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from engine.deploy_errors import DeployError, Problem
from engine.option_scripts import read_option_script
from engine.process_validation import (
    ValidatedProcess,
    check_form_file,
    form_kind,
    validate_process,
)
from engine.store import AuditEvent, Definition, FormVersion, OptionVersion
from engine.versions import (
    KINDS,
    VersionRow,
    current_definition,
    current_options,
    get_version,
    point_at,
)

__all__ = [
    "DeployError", "DeployedVersion", "DeployedVersions", "Problem", "ValidatedForm", "ValidatedOptions",
    "ValidatedProcess", "current_definition", "current_options", "deploy_options", "deploy_process",
    "store_form", "store_options", "validate_form", "validate_options", "validate_process",
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


def _record(session: Session, kind: str, name: str, row: VersionRow, actor: str, **extra: object) -> None:
    """Store a new version, make it current, and record who deployed it (and ``extra``)."""
    previous = get_version(session, kind, name)
    session.add(row)
    session.flush()
    point_at(session, kind, name, row.version, actor)
    session.add(AuditEvent(actor=actor, action="deploy",
                           detail={"kind": kind, "name": name, "version": row.version,
                                   "content_hash": row.content_hash,
                                   "previous_version": previous.version if previous else None, **extra}))


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
    # Option values are settings, never secrets: the trail shows what changed.
    _record(session, "option", options.name, options, actor, values=options.values)
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


def _plain_form_name(name: str) -> bool:
    """Form names are file names of letters, digits, _ and - (they end up in URLs and pickers)."""
    return FORM_NAME.fullmatch(name) is not None


@dataclass(frozen=True)
class DeployedVersion:
    """What running or showing a deployed process version needs of its row (all but its BPMN text)."""

    id: int
    process_id: str
    name: str
    version: int
    spec_json: str
    forms: Mapping[str, str]  # form file name -> its text, as bound at deploy


_DEPLOYED_VERSION = select(Definition.id, Definition.process_id, Definition.name, Definition.version,
                           Definition.spec_json, Definition.forms).where(Definition.id == bindparam("id"))


class DeployedVersions:
    """Deployed process versions of one database by definition id, each read once (a stored
    version never changes); the least recently used go beyond ``size``. Thread-safe."""

    def __init__(self, size: int = 32):
        self._size = size
        self._versions: OrderedDict[int, DeployedVersion] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session: Session, definition_id: int) -> DeployedVersion:
        """Definition ``definition_id``, read in ``session`` the first time it is asked for."""
        with self._lock:
            found = self._versions.get(definition_id)
            if found is not None:
                self._versions.move_to_end(definition_id)
                return found
        found = DeployedVersion(*session.execute(_DEPLOYED_VERSION, {"id": definition_id}).one())
        with self._lock:
            self._versions[definition_id] = found
            while len(self._versions) > self._size:
                self._versions.popitem(last=False)
        return found
