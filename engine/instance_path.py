"""The path a process instance took, read from its stored workflow state, for the auditor's diagram.

Read-only: the workflow is rebuilt from its state and its definition's specs only to read its
task states; nothing runs and nothing is saved. A script engine whose services answer nothing
is enough, because no task is ever run here.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from engine import spiff
from engine.db import unit_of_work
from engine.store import Definition, Instance

# Task states that mean "the instance is at this element now".
CURRENT_STATES = ("READY", "WAITING", "STARTED", "ERROR")


class UnknownInstance(LookupError):
    """No process instance has the id asked for."""


@dataclass(frozen=True)
class InstancePath:
    """Which BPMN elements (by bpmn id) an instance completed, where it is now, where it was cancelled.

    ``completed`` is in the order the elements were first reached. ``status`` is the instance's
    (running, completed, error or cancelled): on ``error`` the current elements are where it stopped.
    """

    instance_id: str
    definition_id: int
    status: str
    completed: list[str]
    current: list[str]
    cancelled: list[str]


def _read_only_engine() -> spiff.ScriptEngine:
    """A script engine for restoring state only: it is never asked to run a script or a service."""
    return spiff.ScriptEngine(spiff.RestrictedEnvironment(lambda *_: {}))


def path_of(session: Session, instance_id: str) -> InstancePath:
    """The path of ``instance_id`` in ``session``; UnknownInstance if there is none."""
    instance = session.get(Instance, instance_id)
    if instance is None:
        raise UnknownInstance(f"There is no process instance {instance_id}.")
    definition = session.get(Definition, instance.definition_id)
    workflow = spiff.state_from_json(instance.state, definition.spec_json, _read_only_engine())
    states = spiff.task_states(workflow)
    return InstancePath(
        instance_id=instance_id, definition_id=definition.id, status=instance.status,
        completed=[bpmn_id for bpmn_id, state in states.items() if state == "COMPLETED"],
        current=[bpmn_id for bpmn_id, state in states.items() if state in CURRENT_STATES],
        cancelled=[bpmn_id for bpmn_id, state in states.items() if state == "CANCELLED"],
    )


def instance_path(sessions: sessionmaker[Session], instance_id: str) -> InstancePath:
    """The path of ``instance_id``, read in a transaction of its own."""
    with unit_of_work(sessions) as session:
        return path_of(session, instance_id)
