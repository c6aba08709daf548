"""Running process instances: start, show the ready user task, complete it, advance the engine.

Web requests only start instances and complete user tasks; the engine steps after them run on a
job host (engine.jobs), under the instance's short lease. Long work (production) is external: a
service task hands it out and the instance waits at a message catch event, holding nothing,
until the work posts its message (``post_message``, in the work's own transaction).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, bindparam, delete, or_, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from engine import spiff
from engine.db import read_only, unit_of_work
from engine.definitions import DeployedVersion, DeployedVersions
from engine.leases import LeaseLost, instance_lease
from engine.services import ServiceContext, ServiceRegistry
from engine.store import AuditEvent, Definition, Instance, InstanceMessage, utcnow
from engine.versions import current_definition, current_rows

log = logging.getLogger(__name__)

# A person's request waits this long for an engine step that holds the instance to end: the
# page shows the next user task a moment before the host that saved it lets go.
PERSON_WAIT_SECONDS = 3.0
# What the console reads of an instance, on every page: columns, no ORM object to build.
_SHOWN = select(Instance.id, Instance.definition_id, Instance.status, Instance.state, Instance.error,
                Instance.started_by, Instance.started_at)
_SHOWN_ONE = _SHOWN.where(Instance.id == bindparam("instance_id"))


class RuntimeFailure(Exception):
    """An instance cannot do what was asked; the message says why and what to do."""


class NotFound(RuntimeFailure):
    """No such process, instance or ready task."""


@dataclass
class ReadyTask:
    """The user task an instance waits on, with the text of its form as its definition binds it."""

    instance_id: str
    task_id: str
    bpmn_id: str
    title: str
    schema_text: str  # the form's JSON Schema
    ui_text: str  # its UI schema ("{}" when the task names none)
    data: dict


@dataclass
class InstanceView:
    """What the console shows of an instance."""

    id: str
    process_id: str
    process_name: str
    process_version: int
    status: str  # running | completed | error | cancelled
    waiting_on: str | None  # title of the ready user task, None while the engine works
    error: str | None
    started_by: str
    started_at: datetime

    @property
    def busy(self) -> bool:
        """True while the runner still has engine steps to do."""
        return self.status == "running" and self.waiting_on is None


class Runtime:
    """Instances of deployed definitions, persisted as serializer JSON without their specs."""

    def __init__(self, sessions: sessionmaker[Session], services: ServiceRegistry,
                 submit: Callable[[str], None],
                 on_cancel: Callable[[Session, str, str], None] | None = None,
                 sign_head: Callable[[Session, str], object] | None = None,
                 on_end: Callable[[Session, str], None] | None = None):
        self.sessions = sessions
        self.services = services
        self._submit = submit
        # Called in the cancelling transaction: the domain frees what the instance held.
        self._on_cancel = on_cancel
        # Called in the transaction that ends an instance (completed or cancelled): the domain
        # lets go of what the instance held while it ran (a card's hold).
        self._on_end = on_end
        # Signs the audit chain's head when an instance ends, so a cut-off tail shows.
        self._sign = sign_head
        # What pages show of a definition, read once per version.
        self._versions = DeployedVersions()

    def _sign_head(self, session: Session, reason: str) -> None:
        """Sign the audit chain's head in ``session`` (after its entries are flushed)."""
        if self._sign is not None:
            session.flush()
            self._sign(session, reason)

    def start(self, process_id: str, user: str, data: dict | None = None,
              claim: Callable[[Session, str], None] | None = None) -> str:
        """Start the current version of ``process_id`` with a snapshot of the current options.

        ``data`` (small plain JSON, such as ``{"card": {"card_id": 7, "number": "TC-000007"}}``)
        is the workflow's initial data; ``claim(session, instance_id)`` runs in the starting
        transaction (the domain records what the instance holds) and may refuse the start by
        raising: then nothing is stored.
        """
        initial = check_start_data(data)
        with unit_of_work(self.sessions) as session:
            definition = current_definition(session, process_id)
            if definition is None:
                raise NotFound(f"Process {process_id} is not deployed; run 'cardflow deploy'.")
            instance = Instance(id=str(uuid.uuid4()), definition_id=definition.id,
                                options=_options_snapshot(session), status="running",
                                state="", started_by=user)
            workflow = spiff.new_workflow(definition.spec_json, self._script_engine(instance, definition))
            spiff.set_start_data(workflow, initial)
            instance.state = spiff.state_to_json(workflow)
            session.add(instance)
            option_versions = {name: snap["version"] for name, snap in instance.options.items()}
            detail = {"process_id": process_id, "version": definition.version, "options": option_versions}
            if initial:
                detail["data"] = initial
            session.add(AuditEvent(actor=user, action="instance started", instance_id=instance.id,
                                   detail=detail))
            if claim is not None:
                session.flush()
                claim(session, instance.id)
        self._submit(instance.id)
        return instance.id

    def advance(self, instance_id: str) -> None:
        """Run every engine step that is ready, saving after each one; deliver the messages the
        instance waits for (a job host calls this)."""
        with instance_lease(self.sessions, instance_id) as owner:
            with read_only(self.sessions) as session:
                instance, definition = self._load_rows(session, instance_id)
                if instance.status != "running":
                    return
            workflow = self._workflow(instance, definition)
            delivered: list[int] = []
            try:
                while True:
                    workflow.do_engine_steps(did_complete_task=lambda _task: self._save(
                        instance_id, workflow, owner=owner, delivered=delivered))
                    if not self._catch_messages(instance_id, workflow, delivered):
                        break
                self._save(instance_id, workflow, owner=owner, delivered=delivered)
            except LeaseLost:
                log.warning("instance %s: lease lost to another host; this host stopped", instance_id,
                            extra={"instance_id": instance_id})
            except Exception as error:  # a handler or script failed: keep the last good state
                log.exception("instance %s stopped on an error", instance_id,
                              extra={"instance_id": instance_id})
                self._mark_error(instance_id, _error_text(error), owner)

    def _catch_messages(self, instance_id: str, workflow, delivered: list[int]) -> bool:
        """Hand the instance the posted messages its catch events wait for; True if any."""
        waiting = spiff.waiting_messages(workflow)
        if not waiting:
            return False
        with read_only(self.sessions) as session:
            posted = session.execute(select(InstanceMessage.id, InstanceMessage.name, InstanceMessage.payload)
                                     .where(InstanceMessage.instance_id == instance_id,
                                            InstanceMessage.delivered_at.is_(None),
                                            InstanceMessage.id.not_in(delivered or [0]))
                                     .order_by(InstanceMessage.id)).all()
        caught = False
        for message_id, name, payload in posted:
            if name in waiting and spiff.catch_message(workflow, name, payload or {}):
                delivered.append(message_id)
                waiting = spiff.waiting_messages(workflow)
                caught = True
        return caught

    def retry(self, instance_id: str, user: str) -> None:
        """Put an instance that stopped on an error back in the runner's queue."""
        with unit_of_work(self.sessions) as session:
            instance = session.get(Instance, instance_id)
            if instance is None or instance.status != "error":
                raise RuntimeFailure("Only an instance that stopped on an error can be retried.")
            instance.status, instance.error, instance.waiting_for = "running", None, None
            session.add(AuditEvent(actor=user, action="instance retried", instance_id=instance_id, detail={}))
        self._submit(instance_id)

    def cancel(self, instance_id: str, user: str) -> None:
        """End an instance that stopped on an error without running it further (a script that ran
        too long, a handler that keeps failing); the domain frees what it held. Audited."""
        with instance_lease(self.sessions, instance_id, wait=PERSON_WAIT_SECONDS):
            with unit_of_work(self.sessions) as session:
                instance, definition = self._load_rows(session, instance_id)
                if instance.status != "error":
                    raise RuntimeFailure("Only an order that stopped on an error can be cancelled here; "
                                         "a running order is cancelled with the Cancel button of its step.")
                workflow = self._workflow(instance, definition)
                workflow.cancel()
                instance.state = spiff.state_to_json(workflow)
                instance.status, instance.updated_at = "cancelled", utcnow()
                session.add(AuditEvent(actor=user, action="instance cancelled", instance_id=instance_id,
                                       detail={"after_error": instance.error}))
                if self._on_cancel is not None:
                    self._on_cancel(session, instance_id, user)
                if self._on_end is not None:
                    self._on_end(session, instance_id)
                session.flush()
                self._sign_head(session, f"instance {instance_id} cancelled")

    def ready_task(self, instance_id: str) -> ReadyTask | None:
        """The user task this instance waits on, or None while it works or after it ended."""
        return self.current(instance_id)[1]

    def complete_task(self, instance_id: str, task_id: str, data: dict[str, Any], user: str) -> None:
        """Complete the ready user task ``task_id`` with validated form ``data``; queue the rest."""
        with instance_lease(self.sessions, instance_id, wait=PERSON_WAIT_SECONDS) as owner:
            with read_only(self.sessions) as session:
                instance, definition = self._load_rows(session, instance_id)
            workflow = self._workflow(instance, definition)
            task = spiff.ready_user_task(workflow)
            if instance.status != "running" or task is None or str(task.id) != task_id:
                raise RuntimeFailure("This step is no longer waiting for input; the page was out of date.")
            task.data.update(data)
            task.run()
            self._save(instance_id, workflow, owner=owner, audit=AuditEvent(
                actor=user, action="task completed", instance_id=instance_id,
                detail={"task": task.task_spec.bpmn_id, "title": task.task_spec.bpmn_name, "data": data}))
        self._submit(instance_id)

    def view(self, instance_id: str) -> InstanceView:
        """The instance's status for the console."""
        instance, definition = self._shown(instance_id)
        return self._view(instance, definition, self._ready_step(instance, definition))

    def current(self, instance_id: str) -> tuple[InstanceView, ReadyTask | None]:
        """The instance's status and the user task it waits on (None while it works or after it
        ended), from one read and at most one restore of its state: what an order's page shows."""
        instance, definition = self._shown(instance_id)
        step = self._ready_step(instance, definition)
        return (self._view(instance, definition, step),
                self._ready(instance, definition, step) if step is not None else None)

    def open_instances(self, user: str | None = None) -> list[InstanceView]:
        """Instances not yet completed (of ``user`` when given), newest first: the inbox."""
        with read_only(self.sessions) as session:
            query = _SHOWN.where(Instance.status.in_(("running", "error")))
            if user is not None:
                query = query.where(Instance.started_by == user)
            rows = session.execute(query.order_by(Instance.started_at.desc())).all()
            shown = [(row, self._versions.get(session, row.definition_id)) for row in rows]
        return [self._view(instance, definition, self._ready_step(instance, definition))
                for instance, definition in shown]

    def pending_instances(self) -> list[str]:
        """Running instances, to hand to the runner after a restart: interrupted work resumes."""
        with read_only(self.sessions) as session:
            return list(session.scalars(select(Instance.id).where(Instance.status == "running")))

    def state_size(self, instance_id: str) -> int:
        """Bytes of stored workflow state (kept small: per-card data lives in tables)."""
        with read_only(self.sessions) as session:
            return len(session.get(Instance, instance_id).state.encode())

    def _shown(self, instance_id: str) -> tuple[Row, DeployedVersion]:
        """The instance's row as the console reads it, and its definition; NotFound if none."""
        with read_only(self.sessions) as session:
            instance = session.execute(_SHOWN_ONE, {"instance_id": instance_id}).first()
            if instance is None:
                raise NotFound(f"No order process {instance_id}.")
            return instance, self._versions.get(session, instance.definition_id)

    @staticmethod
    def _ready_step(instance: Row, definition: DeployedVersion) -> spiff.ReadyStep | None:
        """The user task ``instance`` waits on (None unless it runs), restored at most once per
        stored state, on its definition's specs parsed once."""
        if instance.status != "running":
            return None
        return spiff.ready_step(instance.state, definition.spec_json)

    @staticmethod
    def _view(instance: Row, definition: DeployedVersion, step: spiff.ReadyStep | None) -> InstanceView:
        """What the console shows of ``instance``, waiting on ``step`` (or None)."""
        return InstanceView(instance.id, definition.process_id, definition.name, definition.version,
                            instance.status, step.title if step else None, instance.error,
                            instance.started_by, instance.started_at)

    @staticmethod
    def _ready(instance: Row, definition: DeployedVersion, step: spiff.ReadyStep) -> ReadyTask:
        """``step`` as the console draws it: its title, its form's text, its data."""
        properties = step.properties
        return ReadyTask(
            instance_id=instance.id,
            task_id=step.task_id,
            bpmn_id=step.bpmn_id,
            title=step.title,
            schema_text=definition.forms[properties["formJsonSchemaFilename"]],
            ui_text=definition.forms.get(properties.get("formUiSchemaFilename", ""), "{}"),
            data=step.task_data(),
        )

    def _load_rows(self, session: Session, instance_id: str) -> tuple[Instance, Definition]:
        instance = session.get(Instance, instance_id)
        if instance is None:
            raise NotFound(f"No order process {instance_id}.")
        return instance, session.get(Definition, instance.definition_id)

    def _workflow(self, instance: Instance, definition: Definition):
        """The instance's workflow, to run engine steps or complete a task on."""
        return spiff.state_from_json(instance.state, definition.spec_json,
                                     self._script_engine(instance, definition))

    def _script_engine(self, instance: Instance, definition: Definition) -> spiff.ScriptEngine:
        context = ServiceContext(instance_id=instance.id, process_id=definition.process_id,
                                 process_version=definition.version, user=instance.started_by,
                                 options=instance.options)
        return spiff.ScriptEngine(spiff.RestrictedEnvironment(
            lambda name, params: self.services.call(name, params, context)))

    def _save(self, instance_id: str, workflow, error: str | None = None,
              audit: AuditEvent | None = None, owner: str | None = None,
              delivered: list[int] | None = None) -> None:
        """Save the workflow's state; with ``owner``, only while that lease still holds (fencing)."""
        with unit_of_work(self.sessions) as session:
            instance = session.get(Instance, instance_id)
            if owner is not None:
                fence = session.execute(update(Instance).where(Instance.id == instance_id,
                                                               Instance.locked_by == owner)
                                        .values(updated_at=utcnow()))
                if fence.rowcount != 1:
                    raise LeaseLost(f"instance {instance_id}: the lease passed to another host")
            ended_now = workflow.is_completed() and instance.status != "completed"
            instance.state = spiff.state_to_json(workflow)
            instance.status = "completed" if workflow.is_completed() else "running"
            instance.waiting_for = spiff.waits_for(workflow)
            instance.error = error
            instance.updated_at = utcnow()
            if delivered:
                session.execute(update(InstanceMessage).where(InstanceMessage.id.in_(delivered),
                                                              InstanceMessage.delivered_at.is_(None))
                                .values(delivered_at=utcnow()))
            if audit is not None:
                session.add(audit)
            if ended_now:  # once, at the step that ended it; the end event says how it ended
                session.add(AuditEvent(actor=instance.started_by, action="instance completed",
                                       instance_id=instance_id,
                                       detail={"end_event": spiff.end_event_name(workflow)}))
                if self._on_end is not None:
                    self._on_end(session, instance_id)
                self._sign_head(session, f"instance {instance_id} ended")

    def _mark_error(self, instance_id: str, message: str, owner: str | None = None) -> None:
        """Record the error. If even that cannot be saved (database locked, disk full), the
        instance stays due for engine steps, so the sweeper tries it again: never silently
        "running"."""
        try:
            with unit_of_work(self.sessions) as session:
                instance = session.get(Instance, instance_id)
                if owner is not None and instance.locked_by != owner:
                    return  # another host took it over; its outcome counts
                instance.status, instance.error, instance.updated_at = "error", message, utcnow()
                instance.waiting_for = None
                session.add(AuditEvent(actor="runner", action="instance error", instance_id=instance_id,
                                       detail={"error": message}))
        except Exception:
            log.exception("instance %s: its error could not be saved; the sweeper retries it", instance_id,
                          extra={"instance_id": instance_id})

    def stalled(self, older_than: float = 3.0, limit: int = 100) -> list[tuple[str, bool]]:
        """Running instances with engine steps due that no host holds: their host died between
        or during steps, or their error could not be saved. The sweeper hands them to a host
        again. Each comes with whether a host died holding it (its lease lapsed)."""
        now = utcnow()
        with read_only(self.sessions) as session:
            return [(row.id, row.locked_by is not None) for row in session.execute(
                select(Instance.id, Instance.locked_by).where(
                    Instance.status == "running", Instance.waiting_for.is_(None),
                    or_(Instance.locked_by.is_(None), Instance.locked_until < now),
                    Instance.updated_at < now - timedelta(seconds=older_than))
                .order_by(Instance.updated_at).limit(limit))]

    def record_resume(self, instance_id: str, why: str) -> None:
        """Audit that a host takes over an instance another host left (crash, stop)."""
        with unit_of_work(self.sessions) as session:
            session.add(AuditEvent(actor="runner", action="instance resumed", instance_id=instance_id,
                                   detail={"after": why}))

    def with_messages(self, limit: int = 100) -> list[str]:
        """Running instances with posted messages not delivered yet, that no host holds."""
        now = utcnow()
        with read_only(self.sessions) as session:
            return list(session.scalars(
                select(Instance.id).distinct()
                .join(InstanceMessage, InstanceMessage.instance_id == Instance.id)
                .where(InstanceMessage.delivered_at.is_(None), Instance.status == "running",
                       or_(Instance.locked_by.is_(None), Instance.locked_until < now))
                .limit(limit)))


# Initial workflow data is a handful of ids and names, never a payload.
MAX_START_DATA = 4096


def check_start_data(data: dict | None) -> dict:
    """``data`` as plain JSON (an object with text keys), or RuntimeFailure saying what is wrong."""
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(key, str) for key in data):
        raise RuntimeFailure("A process starts with an object of named values as its data.")
    try:
        text = json.dumps(data, allow_nan=False, sort_keys=True)
    except (TypeError, ValueError, RecursionError) as error:
        raise RuntimeFailure(f"A process starts with plain JSON data only ({error}).") from None
    if len(text) > MAX_START_DATA:
        raise RuntimeFailure(f"A process starts with at most {MAX_START_DATA} bytes of data.")
    # A copy through JSON: tuples become lists, and nothing the caller keeps can change it later.
    return json.loads(text)


def post_message(session: Session, instance_id: str, name: str, payload: dict) -> None:
    """Post message ``name`` to the instance in ``session``'s transaction: it is delivered by
    the instance's next engine step, once its catch event waits for it."""
    session.add(InstanceMessage(instance_id=instance_id, name=name, payload=payload))


def withdraw_messages(session: Session, instance_id: str, name: str) -> None:
    """Withdraw the messages ``name`` posted to the instance and not delivered yet, in
    ``session``'s transaction: work that starts over voids what its earlier round posted."""
    session.execute(delete(InstanceMessage).where(InstanceMessage.instance_id == instance_id,
                                                  InstanceMessage.name == name,
                                                  InstanceMessage.delivered_at.is_(None)))


def _options_snapshot(session: Session) -> dict[str, dict]:
    """The current version of every option set, copied into the instance when it starts."""
    rows = current_rows(session, "option")
    return {row.name: {"version": row.version, "values": row.values} for row in rows}


DATABASE_TROUBLE = ("The database did not accept the step ({kind}); nothing of the step was lost. "
                    "Press Retry in a moment; if it happens again, tell the administrator.")


def _error_text(error: Exception) -> str:
    """The innermost readable message of a task error. A database error never shows its SQL or
    parameters (they can hold card numbers and more): its kind only; the log has the rest."""
    inner = getattr(error, "exception", None) or error.__cause__ or error
    cause: BaseException | None = inner
    while cause is not None and not isinstance(cause, DBAPIError):
        cause = cause.__cause__
    if isinstance(cause, DBAPIError):
        first = str(cause.orig).splitlines()[0].lower() if cause.orig is not None else ""
        kind = ("deadlock" if "deadlock" in first else "locked" if "locked" in first
                else type(cause.orig or cause).__name__)
        return DATABASE_TROUBLE.format(kind=kind)
    return str(inner)
