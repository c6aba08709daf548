"""The engine's tables: deployed definitions and option sets, instances, users, audit events.

Definitions and option versions are immutable rows keyed by the sha256 of their content;
instances point at the version they started with and never re-read the files on disk.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    """Timezone-aware now, the one clock every table uses."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of the engine's tables."""


class Definition(Base):
    """One deployed version of a BPMN process, with the form files it references."""

    __tablename__ = "definitions"
    __table_args__ = (UniqueConstraint("process_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    process_id: Mapped[str] = mapped_column(String(200), index=True)
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    bpmn_xml: Mapped[str] = mapped_column(Text)
    # {"select_cards.schema.json": "<file text>", ...}: forms are versioned with the process.
    forms: Mapped[dict] = mapped_column(JSON)
    # The serializer's JSON of the workflow spec, re-attached to instance state on load.
    spec_json: Mapped[str] = mapped_column(Text)
    deployed_by: Mapped[str] = mapped_column(String(100))
    deployed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class OptionVersion(Base):
    """One deployed version of an option script: its text and the values parsed from it."""

    __tablename__ = "option_versions"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(Text)
    values: Mapped[dict] = mapped_column(JSON)
    deployed_by: Mapped[str] = mapped_column(String(100))
    deployed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class FormVersion(Base):
    """One deployed version of a form file (a JSON Schema or a UI schema), by file name.

    Processes copy the bodies of the forms they name into their own definition row at deploy,
    so a running order never sees a later form; this table is the library admins edit.
    """

    __tablename__ = "form_versions"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    deployed_by: Mapped[str] = mapped_column(String(100))
    deployed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CurrentVersion(Base):
    """Which version of a process, form or option set new orders use.

    Deploy moves the pointer to the version it stored; a rollback moves it back to an older one.
    Versions themselves never change.
    """

    __tablename__ = "current_versions"

    kind: Mapped[str] = mapped_column(String(20), primary_key=True)  # process | form | option
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    set_by: Mapped[str] = mapped_column(String(100))
    set_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Instance(Base):
    """A running or finished process instance; ``state`` is the serializer JSON without specs."""

    __tablename__ = "instances"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    definition_id: Mapped[int] = mapped_column(ForeignKey("definitions.id"), index=True)
    # {"TempCardsScriptOptions": {"version": 3, "values": {...}}}: the snapshot taken at start.
    options: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), index=True)  # running | completed | error | cancelled
    state: Mapped[str] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    started_by: Mapped[str] = mapped_column(String(100), index=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # A lease, not a flag: a runner that died leaves it to expire instead of locking forever.
    locked_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # What a running instance waits for: "user" (a ready user task), "message" (external work,
    # such as production at the stations) or None (engine steps are due: the sweeper resumes it).
    waiting_for: Mapped[str | None] = mapped_column(String(20), nullable=True)


class InstanceMessage(Base):
    """A message for an instance's catch event, written in the transaction of the work that
    sends it (the last card's outcome), delivered by the next engine step: never lost by a crash,
    never early (an instance not yet waiting keeps it until it is)."""

    __tablename__ = "instance_messages"
    __table_args__ = (Index("ix_instance_messages_pending", "delivered_at", "instance_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[str] = mapped_column(ForeignKey("instances.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class User(Base):
    """A console user with one role: operator, admin or auditor."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # Consecutive failed logins; at the policy's limit the account locks until ``locked_until``.
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    password_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class LoginSession(Base):
    """A logged-in browser. The cookie carries a random token; only its sha256 is stored here,
    and logging out deletes the row, so a cookie copied before logout is worthless after it."""

    __tablename__ = "login_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AuditEvent(Base):
    """One entry of the append-only, hash-chained audit trail: who did what, to which instance,
    order or card, and when. Never holds a secret. ``hash`` covers the entry and ``prev_hash``
    (the hash of the entry before it), so an edit, deletion, insertion or reordering shows."""

    __tablename__ = "audit_events"
    __table_args__ = (
        # Each filter of the auditor's pages, then the time and id the pages are ordered by: a
        # page is one index range read from one end, with or without a time range.
        Index("ix_audit_events_card_at", "card", "at", "id"),
        Index("ix_audit_events_order_at", "order_id", "at", "id"),
        Index("ix_audit_events_actor_at", "actor", "at", "id"),
        Index("ix_audit_events_action_at", "action", "at", "id"),
        Index("ix_audit_events_at_id", "at", "id"),
        Index("ix_audit_events_instance_id", "instance_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(100))
    instance_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    order_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    card: Mapped[str | None] = mapped_column(String(40), nullable=True)  # the card's number
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """A signed chain head: the entry ``entry_id`` had ``hash`` when ``signature`` was made, by a
    key kept outside the database. Verify proves every entry up to it, and that none was cut off."""

    __tablename__ = "audit_heads"

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(Integer, index=True)
    hash: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    reason: Mapped[str] = mapped_column(String(200))
    key_id: Mapped[str] = mapped_column(String(64))  # sha256 of the public key
    signature: Mapped[str] = mapped_column(Text)  # base64


# Every session that adds audit entries links them into the chain (the listeners live there).
import engine.audit_chain  # noqa: E402,F401
