"""Deploying a set of files (from disk, an upload or an editor) all or nothing, as ``cardflow
deploy`` and every admin page do: forms first, then processes bound to them, then option sets.

``missing_only`` deploys only the files whose name (form, process id, option set) has no version
in the database yet: what a restart of the demo does, so that it never replaces, nor moves the
current version away from, what an admin deployed or rolled back to in the console.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from engine.definitions import (
    DeployError,
    OptionValidator,
    Problem,
    ValidatedForm,
    ValidatedOptions,
    ValidatedProcess,
    deploy_process,
    store_form,
    store_options,
    validate_form,
    validate_option_source,
)
from engine.process_validation import validate_process_bytes
from engine.versions import current_definition, current_forms, current_rows, current_version_number


def deploy_all(
    session: Session,
    root: Path,
    operators: Collection[str],
    option_validators: Mapping[str, OptionValidator],
    actor: str,
    check_only: bool = False,
    widgets: Collection[str] | None = None,
    missing_only: bool = False,
) -> list[str]:
    """Validate root/forms/*.json, root/processes/*.bpmn and root/options/*, then deploy them all
    or nothing (see deploy_files); with ``missing_only``, only those never deployed."""
    paths = sorted((root / "forms").glob("*.json")) + sorted((root / "processes").glob("*.bpmn"))
    paths += _option_files(root / "options")
    return deploy_files(session, paths, operators, option_validators, actor, check_only, widgets, root=root,
                        missing_only=missing_only)


def deploy_files(
    session: Session,
    paths: Sequence[Path],
    operators: Collection[str],
    option_validators: Mapping[str, OptionValidator],
    actor: str,
    check_only: bool = False,
    widgets: Collection[str] | None = None,
    root: Path | None = None,
    missing_only: bool = False,
) -> list[str]:
    """Validate the given files (``.json`` forms, ``.bpmn`` processes, other files option scripts),
    then deploy them all or nothing (see deploy_sources)."""
    sources = [Source(path.name, path.read_bytes(), _display_name(path, root)) for path in paths]
    return deploy_sources(session, sources, operators, option_validators, actor, check_only, widgets,
                          missing_only)


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
    missing_only: bool = False,
) -> list[str]:
    """Validate ``sources``, then deploy them all or nothing; with ``missing_only``, only those
    whose name was never deployed (the others are left as the database has them: "kept").

    A process binds the forms given here first, then the deployed ones; a current process that
    binds a form deployed here, but is not itself given, gets a new version bound to the new form
    (so new orders see it). Raises DeployError with every problem of every file; returns one line
    per version ("... v2 deployed", "... unchanged (v1)", or "... valid" when ``check_only``).
    """
    forms: list[ValidatedForm] = []
    processes: list[ValidatedProcess] = []
    option_sets: list[ValidatedOptions] = []
    problems: list[Problem] = []
    kept: list[tuple[str, str, int]] = []  # (kind, name, current version) left as deployed
    if missing_only:
        # Forms and option sets are named by their file; a process by the id inside it (below).
        kept = _deployed(session, [(s.kind, s.name) for s in sources if s.kind != "process"])
        sources = [s for s in sources if s.kind == "process" or s.name not in {name for _k, name, _v in kept}]
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
    if missing_only:
        deployed = _deployed(session, [("process", process.process_id) for process in processes])
        ids = {name for _kind, name, _version in deployed}
        processes = [process for process in processes if process.process_id not in ids]
        kept += deployed
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
    return lines + [f"{name} kept as deployed (v{version})" for _kind, name, version in kept]


def _deployed(session: Session, names: list[tuple[str, str]]) -> list[tuple[str, str, int]]:
    """Those of (kind, name) that have a current version, with it."""
    versions = [(kind, name, current_version_number(session, kind, name)) for kind, name in names]
    return [(kind, name, version) for kind, name, version in versions if version is not None]


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
