"""The card domain's tables: cards, orders, reservations, production records, state changes.

Per-card data lives here, never in workflow data. The rule "a card belongs to at most one open
order" is the primary key of ``reservations``: the database refuses a second reservation even
when two operators race for the same card.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tasks.cardsdk.fascn import Fascn


def utcnow() -> datetime:
    """Timezone-aware now."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of the card domain's tables (and the Card SDK's records)."""


class Card(Base):
    """A temporary card, from its request to its end of life."""

    __tablename__ = "cards"
    # The card picker's two orders: by request date, and by number when searching a number; each
    # index carries the other order's column so a number prefix with a date window never reads the
    # table (tasks/card_search.py picks the one that walks the smaller range).
    __table_args__ = (Index("ix_cards_search_date", "state", "requested_at", "id", "number"),
                      Index("ix_cards_search_number", "state", "number", "requested_at"),
                      Index("ix_cards_holder", "holder_id", "number"),
                      # The expiry sweep: the cards of a state whose validity ended, an index range.
                      Index("ix_cards_expiry", "state", "valid_until"))

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    state: Mapped[str] = mapped_column(String(20))
    organisation: Mapped[str] = mapped_column(String(200))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    valid_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The holder the card is assigned to (None unless assigned); indexed with the number, so a
    # holder's cards and the SEARCH page's holder filter are index ranges in number order.
    holder_id: Mapped[int | None] = mapped_column(ForeignKey("holders.id"), nullable=True)


class Holder(Base):
    """A person who can get a temporary card; only an active holder can be assigned one."""

    __tablename__ = "holders"
    # Holder search: a case-folded name prefix, in name order (the id breaks ties for keyset pages).
    __table_args__ = (Index("ix_holders_name_key", "name_key", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    identifier: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_key: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254))
    unit: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(10), default="active")  # active | inactive
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Assignment(Base):
    """A card in a holder's hands, from its assignment to its withdrawal (the holder page's list)."""

    __tablename__ = "assignments"

    id: Mapped[int] = mapped_column(primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id"), index=True)
    holder_id: Mapped[int] = mapped_column(ForeignKey("holders.id"), index=True)
    # The process instance that assigned it (its PIN letter step may print the letter).
    instance_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    assigned_by: Mapped[str] = mapped_column(String(100))
    assigned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ended_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    end_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class Order(Base):
    """A batch order: one process instance, the option snapshot it runs with, its outcome."""

    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[str] = mapped_column(String(36), unique=True)
    process_id: Mapped[str] = mapped_column(String(200))
    process_version: Mapped[int] = mapped_column(Integer)
    options_name: Mapped[str] = mapped_column(String(200))
    options_version: Mapped[int] = mapped_column(Integer)
    options: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), index=True)  # open | completed | cancelled
    created_by: Mapped[str] = mapped_column(String(100), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Cards of the current production batch still without an outcome; the outcome that brings
    # it to 0 sends the instance its "cards produced" message, in the same transaction.
    cards_outstanding: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The station pool whose queue the order's card jobs go to.
    station_pool: Mapped[str] = mapped_column(String(100), default="default", server_default="default")
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Selection(Base):
    """Cards the operator ticked, staged until the Reserve step turns them into reservations."""

    __tablename__ = "selections"

    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id"), primary_key=True)


class Reservation(Base):
    """A card held by an open order. The primary key on card_id is the one-open-order rule."""

    __tablename__ = "reservations"

    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id"), primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)


class OrderCard(Base):
    """A card's place in an order and where its production stands."""

    __tablename__ = "order_cards"
    # The sweeper's question: which claims have lapsed? And a pool's: which cards still wait?
    __table_args__ = (Index("ix_order_cards_status_claim", "status", "claimed_until"),)

    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id"), primary_key=True)
    # pending | claimed | produced | failed
    status: Mapped[str] = mapped_column(String(20), default="pending")
    repeat_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    misprint_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The fencing token of the card's claim: raised at every claim and every takeover, and
    # checked by every write of the card's outcome, so a worker that lost its claim (paused,
    # partitioned) can record nothing, whatever it still believes.
    claim_token: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    claimed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ProductionAttempt(Base):
    """One try at producing one physical card: outcome, error, serial, what was spoiled, and the
    physical card's own identity (GUID and FASC-N), never shared with another physical card."""

    __tablename__ = "production_attempts"
    __table_args__ = (UniqueConstraint("order_id", "card_id", "attempt"),
                      # A door system looks a card up by either; no two physical cards share one.
                      Index("ux_production_attempts_card_uuid", "card_uuid", unique=True),
                      Index("ux_production_attempts_fascn", "fascn", unique=True))

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    # started | produced | failed | interrupted
    outcome: Mapped[str] = mapped_column(String(20))
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    physical_serial: Mapped[str | None] = mapped_column(String(100), nullable=True)
    files: Mapped[list] = mapped_column(JSON, default=list)
    spoiled_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    spoiled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    station: Mapped[str | None] = mapped_column(String(100), nullable=True)
    worker: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # The CHUID GUID (UUID v4) and the FASC-N's 32 digits (tasks/cardsdk/card_identity.py); empty
    # for attempts made before cards had an identity of their own.
    card_uuid: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    fascn: Mapped[str | None] = mapped_column(String(32), nullable=True)

    @property
    def fascn_readable(self) -> str | None:
        """The FASC-N with its fields apart (9999-9999-000010-1-1-...), for pages."""
        return Fascn.from_digits(self.fascn).readable if self.fascn else None


class RevocationRequest(Base):
    """Certificates of an attempt to revoke, queued in the transaction that spoils or interrupts
    the attempt and drained by every worker: a crash between the two cannot leave them valid."""

    __tablename__ = "revocation_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_ref: Mapped[str] = mapped_column(String(200), index=True)
    reason: Mapped[str] = mapped_column(String(200))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)
    revoked: Mapped[int | None] = mapped_column(Integer, nullable=True)


class StationStatus(Base):
    """A production station as the console and /healthz see it: heartbeat, pause, counters."""

    __tablename__ = "stations"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    pool: Mapped[str] = mapped_column(String(100), default="default")
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    worker: Mapped[str | None] = mapped_column(String(100), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    cards_produced: Mapped[int] = mapped_column(Integer, default=0)
    cards_failed: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_error_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class CardEvent(Base):
    """A recorded state change: who, when, which order and process version, from, to, why."""

    __tablename__ = "card_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor: Mapped[str] = mapped_column(String(100))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), nullable=True)
    process_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    process_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The process instance that made the change when no order did (a card process: Lock, Assign...).
    instance_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    from_state: Mapped[str | None] = mapped_column(String(20), nullable=True)
    to_state: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text)
