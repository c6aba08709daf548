"""Which version of each process, form and option set is current, and moving that pointer.

Versions are immutable rows; what new orders use is a pointer per name (``current_versions``).
Deploy points it at the version it stored; a rollback points it back at an older one. Running
orders keep the definition they started with whatever the pointer says.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.store import AuditEvent, CurrentVersion, Definition, FormVersion, Instance, OptionVersion, utcnow

# kind -> (model, the column naming what is versioned)
KINDS = {
    "process": (Definition, Definition.process_id),
    "form": (FormVersion, FormVersion.name),
    "option": (OptionVersion, OptionVersion.name),
}
VersionRow = Definition | FormVersion | OptionVersion


class VersionError(LookupError):
    """A version that does not exist, or a rollback that cannot be done; the message says which."""


@dataclass(frozen=True)
class VersionInfo:
    """One version as the admin console and ``cardflow versions`` list it."""

    kind: str
    name: str
    version: int
    content_hash: str
    deployed_by: str
    deployed_at: datetime
    current: bool
    orders: int  # instances started on this version (processes and option sets)


def _model(kind: str):
    try:
        return KINDS[kind]
    except KeyError:
        raise VersionError(f"Unknown kind {kind!r}; use one of: {', '.join(KINDS)}.") from None


def current_version_number(session: Session, kind: str, name: str) -> int | None:
    """The version number new orders use for ``name``, or None if it was never deployed."""
    return session.scalar(select(CurrentVersion.version).where(CurrentVersion.kind == kind,
                                                               CurrentVersion.name == name))


def get_version(session: Session, kind: str, name: str, version: int | None = None) -> VersionRow | None:
    """One version of ``name`` (the current one when ``version`` is None), or None."""
    model, key = _model(kind)
    if version is None:
        version = current_version_number(session, kind, name)
        if version is None:
            return None
    return session.scalar(select(model).where(key == name, model.version == version))


def current_definition(session: Session, process_id: str) -> Definition | None:
    """The version of a process that new orders start, or None if it was never deployed."""
    return get_version(session, "process", process_id)


def current_options(session: Session, name: str) -> OptionVersion | None:
    """The version of an option set that new orders snapshot, or None if it was never deployed."""
    return get_version(session, "option", name)


def current_rows(session: Session, kind: str) -> list[VersionRow]:
    """The current version of every name of ``kind``, by name."""
    model, key = _model(kind)
    return list(session.scalars(
        select(model).join(CurrentVersion, (CurrentVersion.kind == kind) & (CurrentVersion.name == key)
                           & (CurrentVersion.version == model.version))
        .order_by(key)))


def current_form_names(session: Session) -> list[str]:
    """The file names of every deployed form (what a user task may name), sorted."""
    return [row.name for row in current_rows(session, "form")]


def current_forms(session: Session) -> dict[str, bytes]:
    """The current body of every deployed form, by file name (what new process versions bind to)."""
    return {row.name: row.body.encode("utf-8") for row in current_rows(session, "form")}


def point_at(session: Session, kind: str, name: str, version: int, actor: str) -> None:
    """Make ``version`` of ``name`` current (no audit: the caller records why)."""
    pointer = session.get(CurrentVersion, (kind, name))
    if pointer is None:
        session.add(CurrentVersion(kind=kind, name=name, version=version, set_by=actor, set_at=utcnow()))
    else:
        pointer.version, pointer.set_by, pointer.set_at = version, actor, utcnow()
    session.flush()


def rollback(session: Session, kind: str, name: str, version: int, actor: str) -> VersionRow:
    """Make an earlier ``version`` current for new orders; running orders keep theirs. Audited."""
    row = get_version(session, kind, name, version)
    if row is None:
        raise VersionError(f"There is no {kind} {name} version {version}.")
    current = current_version_number(session, kind, name)
    if current == version:
        raise VersionError(f"{name} version {version} is already the current version; nothing changed.")
    point_at(session, kind, name, version, actor)
    session.add(AuditEvent(actor=actor, action="rollback",
                           detail={"kind": kind, "name": name, "from_version": current,
                                   "to_version": version, "content_hash": row.content_hash}))
    return row


def list_versions(session: Session, kind: str, name: str | None = None) -> list[VersionInfo]:
    """Every version of every name of ``kind`` (or of ``name``), newest first per name."""
    model, key = _model(kind)
    query = select(model)
    if name is not None:
        query = query.where(key == name)
    rows = session.scalars(query.order_by(key, model.version.desc())).all()
    pointers = {(p.name, p.version) for p in session.scalars(select(CurrentVersion)
                                                             .where(CurrentVersion.kind == kind))}
    orders = _order_counts(session, kind)
    return [VersionInfo(kind, getattr(row, key.key), row.version, row.content_hash, row.deployed_by,
                        row.deployed_at, (getattr(row, key.key), row.version) in pointers,
                        orders.get((getattr(row, key.key), row.version), 0))
            for row in rows]


def _order_counts(session: Session, kind: str) -> dict[tuple[str, int], int]:
    """How many instances started on each version: processes by definition, options by snapshot."""
    if kind == "process":
        rows = session.execute(select(Definition.process_id, Definition.version, func.count(Instance.id))
                               .join(Instance, Instance.definition_id == Definition.id)
                               .group_by(Definition.process_id, Definition.version))
        return {(name, version): count for name, version, count in rows}
    if kind == "option":
        counts: dict[tuple[str, int], int] = {}
        # The snapshot is JSON; instances are few compared to cards, so counting here is cheap.
        for options in session.scalars(select(Instance.options)):
            for name, snapshot in (options or {}).items():
                key = (name, snapshot.get("version"))
                counts[key] = counts.get(key, 0) + 1
        return counts
    return {}
