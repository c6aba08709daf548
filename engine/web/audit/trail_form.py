"""The audit trail's filter form: read the query arguments, say what is wrong next to each field.

Parsing itself is ``engine.audit_export.AuditFilters.parse`` (the CLI export uses the same);
this module only checks each field on its own, so every error lands next to its field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.audit_export import AuditFilterError, AuditFilters
from engine.store import AuditEvent

FIELDS = ("card", "order", "user", "action", "since", "until")
# The columns' sizes: a longer value can match nothing, so it is a mistake worth saying.
MAX_LENGTH = {"card": 40, "order": 12, "user": 100, "action": 100, "since": 40, "until": 40}
MESSAGES = {
    "card": "A card number, such as TC-000001.",
    "order": "An order number is digits only, such as 42.",
    "user": "A user name, such as alice, station or runner.",
    "action": "Pick an event type from the list.",
    "since": "{value!r} is no time: give a date, or a date and time, in UTC, such as 2026-11-24 or "
             "2026-11-24 16:20.",
    "until": "{value!r} is no time: give a date, or a date and time, in UTC, such as 2026-11-24 or "
             "2026-11-24 16:20.",
}
# The events the code records, grouped for the event type list (engine.users, engine.logins,
# engine.definitions, engine.versions, engine.runtime, engine.bootstrap, engine.domain_audit).
EVENT_TYPES = (
    ("Logins and users", ("login", "login failed", "login locked", "logout", "user added", "user disabled",
                          "user enabled", "password reset", "role changed", "user unlocked")),
    ("Processes, forms and options", ("deploy", "rollback")),
    ("Orders and their process", ("instance started", "task completed", "instance completed",
                                  "instance error", "instance retried", "instance resumed",
                                  "instance cancelled", "order completed", "order cancelled")),
    ("Cards and production", ("card state changed", "attempt started", "attempt produced", "attempt failed",
                              "attempt interrupted", "card spoiled")),
    ("Certificates and PIN custody", ("certificate issued", "certificate revoked", "custody released")),
)
# Events recorded by code newer than the list above still show: the distinct events of this
# many latest entries are added (a short walk down the primary key, never a full scan).
RECENT_ENTRIES = 1000


@dataclass(frozen=True)
class TrailForm:
    """The filter form as typed, its errors by field, and the filters (None when any is wrong)."""

    values: dict[str, str]
    errors: dict[str, str]
    filters: AuditFilters | None

    @property
    def query(self) -> dict[str, str]:
        """The filled-in fields, for links that keep the filter (pages, exports)."""
        return {name: value for name, value in self.values.items() if value}


def _field_error(name: str, value: str) -> str | None:
    """Why ``value`` cannot be used for field ``name``, or None."""
    message = MESSAGES[name].format(value=value[:MAX_LENGTH[name]])
    if len(value) > MAX_LENGTH[name] or not value.isprintable():
        return message
    try:
        AuditFilters.parse(**{name: value})
    except (AuditFilterError, OverflowError):  # a year 1 time with an offset overflows to UTC
        return message
    return None


def _shown(moment: datetime | None, typed: str) -> str:
    """A time filter as the datetime-local field shows it (UTC), or as typed when it is no time."""
    if moment is None:
        return typed
    return moment.strftime("%Y-%m-%dT%H:%M:%S" if moment.second else "%Y-%m-%dT%H:%M")


def read_form(args: Mapping[str, str]) -> TrailForm:
    """The form from the query arguments; each bad field gets a message and no filter is made."""
    values = {name: args.get(name, "").strip() for name in FIELDS}
    errors = {name: message for name in FIELDS if values[name]
              and (message := _field_error(name, values[name])) is not None}
    if errors:
        return TrailForm(values, errors, None)
    try:
        filters = AuditFilters.parse(**values)
    except AuditFilterError:  # each field is fine alone: the range is the wrong way round
        return TrailForm(values, {"until": "The end of the time range must be after its start."}, None)
    values.update(since=_shown(filters.since, values["since"]), until=_shown(filters.until, values["until"]))
    return TrailForm(values, {}, filters)


def event_type_groups(session: Session, selected: str = "") -> list[tuple[str, list[str]]]:
    """The event type list: the known events by group, then any other event seen recently."""
    known = {action for _, actions in EVENT_TYPES for action in actions}
    recent = select(AuditEvent.action).order_by(AuditEvent.id.desc()).limit(RECENT_ENTRIES).subquery()
    others = set(session.scalars(select(recent.c.action).distinct())) - known
    if selected and selected not in known:
        others.add(selected)
    groups = [(label, list(actions)) for label, actions in EVENT_TYPES]
    return groups + ([("Other events", sorted(others))] if others else [])
