"""Read-only views of cards and orders for the console: the search filter, lists, progress, history."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from math import ceil
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session

from tasks.cards import CardState
from tasks.cardsdk.records import CustodyRelease, IssuedCertificate
from tasks.errors import NotFoundError
from tasks.store import Card, CardEvent, Holder, Order, OrderCard, ProductionAttempt, utcnow


@dataclass(frozen=True)
class SearchFilter:
    """The card picker's filter: card number (prefix) and request date range (inclusive)."""

    number: str | None = None
    requested_from: date | None = None
    requested_to: date | None = None

    @property
    def prefix(self) -> str:
        """The number prefix as card numbers are written (capitals), or "" for none."""
        return (self.number or "").strip().upper()


@dataclass
class Page:
    """A page of results and where it sits among all of them."""

    items: list
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        """Number of pages (at least 1)."""
        return max(1, ceil(self.total / self.per_page))


OrderCardPage = Page


@dataclass
class OrderCardView:
    """A card of an order with its latest production attempt."""

    card_id: int
    number: str
    state: str
    status: str
    repeat_requested: bool
    misprint_reason: str | None
    attempt: int = 0
    error: str | None = None
    physical_serial: str | None = None
    files: list[str] = field(default_factory=list)


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=utcnow().tzinfo)


def number_bounds(match: SearchFilter) -> tuple[str | None, str | None]:
    """The filter's number prefix as a range of numbers, from (inclusive) to (exclusive).

    A range instead of LIKE: an index on the number serves it on every database.
    """
    prefix = match.prefix
    return (prefix, prefix + "\uffff") if prefix else (None, None)


def request_bounds(match: SearchFilter) -> tuple[datetime | None, datetime | None]:
    """The filter's request dates as a range of times, from (inclusive) to (exclusive): whole days, UTC."""
    return (_day_start(match.requested_from) if match.requested_from else None,
            _day_start(match.requested_to + timedelta(days=1)) if match.requested_to else None)


def in_range(column: Any, bounds: tuple[Any, Any]) -> list:
    """WHERE conditions keeping ``column`` within ``bounds`` (from inclusive, to exclusive; None: open)."""
    low, high = bounds
    return ([column >= low] if low is not None else []) + ([column < high] if high is not None else [])


def requested_cards(match: SearchFilter) -> Select:
    """The ids of requested cards matching ``match`` (shared by search and select-all)."""
    return select(Card.id).where(Card.state == CardState.REQUESTED,
                                 *in_range(Card.number, number_bounds(match)),
                                 *in_range(Card.requested_at, request_bounds(match)))


def order_for_instance(session: Session, instance_id: str) -> Order | None:
    """The order a process instance works on."""
    return session.scalar(select(Order).where(Order.instance_id == instance_id))


def order_cards(session: Session, order_id: int, page: int = 1, per_page: int = 100,
                failed_first: bool = False) -> Page:
    """The order's cards with their latest attempt, by card number (``failed_first``: the failed
    ones first, what a review acts on)."""
    total = session.scalar(select(func.count()).where(OrderCard.order_id == order_id)) or 0
    page = max(1, min(page, max(1, ceil(total / per_page))))
    latest = (select(ProductionAttempt.card_id, func.max(ProductionAttempt.attempt).label("attempt"))
              .where(ProductionAttempt.order_id == order_id)
              .group_by(ProductionAttempt.card_id).subquery())
    rows = session.execute(
        select(OrderCard, Card, ProductionAttempt)
        .join(Card, Card.id == OrderCard.card_id)
        .outerjoin(latest, latest.c.card_id == OrderCard.card_id)
        .outerjoin(ProductionAttempt, (ProductionAttempt.order_id == order_id)
                   & (ProductionAttempt.card_id == OrderCard.card_id)
                   & (ProductionAttempt.attempt == latest.c.attempt))
        .where(OrderCard.order_id == order_id)
        .order_by(*([OrderCard.status != "failed"] if failed_first else []), Card.number)
        .limit(per_page).offset((page - 1) * per_page)
    ).all()
    items = []
    for item, card, attempt in rows:
        view = OrderCardView(card.id, card.number, card.state, item.status, item.repeat_requested,
                             item.misprint_reason)
        if attempt is not None:
            view.attempt, view.error = attempt.attempt, attempt.error
            view.physical_serial, view.files = attempt.physical_serial, list(attempt.files or [])
        items.append(view)
    return Page(items, total, page, per_page)


def progress(session: Session, order_id: int) -> dict[str, int]:
    """How many of the order's cards are pending, produced and failed."""
    counts = dict(session.execute(
        select(OrderCard.status, func.count()).where(OrderCard.order_id == order_id)
        .group_by(OrderCard.status)).all())
    result = {status: counts.get(status, 0) for status in ("pending", "produced", "failed")}
    result["pending"] += counts.get("claimed", 0)  # at a station right now: still without outcome
    result["total"] = sum(counts.values())
    return result


def list_cards(session: Session, state: str | None = None) -> list[Card]:
    """Every card (of ``state`` when given), by number: the CLI's listing."""
    query = select(Card).order_by(Card.number)
    if state:
        query = query.where(Card.state == state)
    return list(session.scalars(query))


def orders_page(session: Session, status: str | tuple[str, ...] | None = None, operator: str | None = None,
                before_id: int | None = None, after_id: int | None = None, limit: int = 50,
                number: int | None = None, day: date | None = None) -> list[Order]:
    """Up to ``limit`` orders (of ``status``, or one of several; started by ``operator``; order
    ``number``; started or closed on ``day``, UTC), by id: a keyset page.

    Newest first: the newest, those just below ``before_id``, or those just above ``after_id``
    (the page "newer" than the one starting at ``after_id``). Never an offset,
    so any page costs the same.
    """
    query = select(Order)
    if isinstance(status, str):
        query = query.where(Order.status == status)
    elif status:
        query = query.where(Order.status.in_(status))
    if operator:
        query = query.where(Order.created_by == operator)
    if number is not None:
        query = query.where(Order.id == number)
    if day is not None:
        bounds = (_day_start(day), _day_start(day + timedelta(days=1)))
        query = query.where(or_(and_(*in_range(Order.created_at, bounds)),
                                and_(*in_range(Order.closed_at, bounds))))
    if after_id is not None:
        rows = session.scalars(query.where(Order.id > after_id).order_by(Order.id).limit(limit)).all()
        return list(reversed(rows))
    if before_id is not None:
        query = query.where(Order.id < before_id)
    return list(session.scalars(query.order_by(Order.id.desc()).limit(limit)))


def card_counts(session: Session, order_ids: list[int]) -> dict[int, dict[str, int]]:
    """For each of ``order_ids``: how many of its cards are pending, produced, failed, and in all."""
    counts = {order_id: {"pending": 0, "produced": 0, "failed": 0, "total": 0} for order_id in order_ids}
    if not order_ids:
        return counts
    rows = session.execute(select(OrderCard.order_id, OrderCard.status, func.count())
                           .where(OrderCard.order_id.in_(order_ids))
                           .group_by(OrderCard.order_id, OrderCard.status))
    for order_id, status, number in rows:
        counts[order_id][status] = counts[order_id].get(status, 0) + number
        counts[order_id]["total"] += number
    return counts


@dataclass
class CardAttempts:
    """A card of an order, where its production stands, and every attempt at producing it."""

    number: str
    state: str
    status: str
    misprint_reason: str | None
    attempts: list[ProductionAttempt]


def order_card_attempts(session: Session, order_id: int, after_number: str | None = None,
                        limit: int = 100) -> list[CardAttempts]:
    """Up to ``limit`` cards of the order by number (after ``after_number``), each with its
    attempts, first attempt first."""
    query = (select(OrderCard, Card).join(Card, Card.id == OrderCard.card_id)
             .where(OrderCard.order_id == order_id))
    if after_number is not None:
        query = query.where(Card.number > after_number)
    rows = session.execute(query.order_by(Card.number).limit(limit)).all()
    attempts: dict[int, list[ProductionAttempt]] = {card.id: [] for _, card in rows}
    if attempts:
        for attempt in session.scalars(select(ProductionAttempt)
                                       .where(ProductionAttempt.order_id == order_id,
                                              ProductionAttempt.card_id.in_(list(attempts)))
                                       .order_by(ProductionAttempt.card_id, ProductionAttempt.attempt)):
            attempts[attempt.card_id].append(attempt)
    return [CardAttempts(card.number, card.state, item.status, item.misprint_reason, attempts[card.id])
            for item, card in rows]


def orders_of_instances(session: Session, instance_ids: list[str]) -> dict[str, int]:
    """Process instance id -> the id of the order it works on, for those of ``instance_ids`` that have one."""
    if not instance_ids:
        return {}
    rows = session.execute(select(Order.instance_id, Order.id).where(Order.instance_id.in_(instance_ids)))
    return dict(rows.all())


@dataclass(frozen=True)
class OrderFacts:
    """An order as a card's history names it: who started it, what it ran, and the card in it."""

    id: int
    instance_id: str
    created_by: str
    status: str
    process_id: str
    process_version: int
    options_name: str
    options_version: int
    card_status: str | None  # the card's production status in this order
    misprint_reason: str | None  # the latest misprint marked on the card in this order


@dataclass(frozen=True)
class CertificateView:
    """A certificate the CA issued for one production attempt of a card (never its key)."""

    serial: str
    certificate_type: str
    slot: str
    issued_at: datetime
    valid_until: datetime
    revoked_at: datetime | None
    revocation_reason: str | None
    order_id: int | None
    attempt: int | None


@dataclass(frozen=True)
class ReleaseView:
    """A release of a card's secrets from custody: which, by whom, when (never the values)."""

    kinds: str
    released_by: str
    released_at: datetime
    order_id: int | None
    attempt: int | None


@dataclass
class CardRecord:
    """Everything recorded about one card, oldest first: its state changes, the orders that
    touched it, each production attempt, the certificates issued for them, custody releases."""

    card: Card
    events: list[CardEvent]
    orders: dict[int, OrderFacts]
    attempts: list[ProductionAttempt]
    certificates: list[CertificateView]
    releases: list[ReleaseView]
    holder: Holder | None = None  # who holds the card now (assigned cards)


def card_history(session: Session, number: str) -> CardRecord:
    """The record of the card numbered ``number``; NotFoundError when there is none."""
    # tasks.production imports this module; its attempt tag is the key of CA and custody records.
    from tasks.production import attempt_ref

    card = session.scalar(select(Card).where(Card.number == number))
    if card is None:
        raise NotFoundError(f"No card with number {number}.")
    events = list(session.scalars(select(CardEvent).where(CardEvent.card_id == card.id)
                                  .order_by(CardEvent.at, CardEvent.id)))
    attempts = list(session.scalars(select(ProductionAttempt).where(ProductionAttempt.card_id == card.id)
                                    .order_by(ProductionAttempt.started_at, ProductionAttempt.id)))
    of_ref = {attempt_ref(a.order_id, a.card_id, a.attempt): (a.order_id, a.attempt) for a in attempts}
    certificates = [
        CertificateView(*row[:-1], *of_ref.get(row[-1], (None, None)))
        for row in session.execute(
            select(IssuedCertificate.serial, IssuedCertificate.certificate_type, IssuedCertificate.slot,
                   IssuedCertificate.not_before, IssuedCertificate.not_after, IssuedCertificate.revoked_at,
                   IssuedCertificate.revocation_reason, IssuedCertificate.attempt_ref)
            .where(IssuedCertificate.card_number == card.number)
            .order_by(IssuedCertificate.not_before, IssuedCertificate.id))]
    releases = [
        ReleaseView(*row[:-1], *of_ref.get(row[-1], (None, None)))
        for row in session.execute(
            select(CustodyRelease.kinds, CustodyRelease.released_by, CustodyRelease.released_at,
                   CustodyRelease.attempt_ref)
            .where(CustodyRelease.card_id == card.id)
            .order_by(CustodyRelease.released_at, CustodyRelease.id))]
    order_ids = {e.order_id for e in events if e.order_id} | {a.order_id for a in attempts}
    holder = session.get(Holder, card.holder_id) if card.holder_id else None
    return CardRecord(card, events, _orders_of_card(session, card.id, order_ids), attempts, certificates,
                      releases, holder)


def _orders_of_card(session: Session, card_id: int, order_ids: set[int]) -> dict[int, OrderFacts]:
    """The orders ``order_ids`` by id, each with where card ``card_id`` stands in it."""
    if not order_ids:
        return {}
    rows = session.execute(
        select(Order.id, Order.instance_id, Order.created_by, Order.status, Order.process_id,
               Order.process_version, Order.options_name, Order.options_version, OrderCard.status,
               OrderCard.misprint_reason)
        .outerjoin(OrderCard, (OrderCard.order_id == Order.id) & (OrderCard.card_id == card_id))
        .where(Order.id.in_(sorted(order_ids))))
    return {row[0]: OrderFacts(*row) for row in rows}


@dataclass(frozen=True)
class CardMatch:
    """A card whose number starts with a looked-up prefix."""

    number: str
    state: str
    requested_at: datetime


def cards_by_prefix(session: Session, prefix: str, after: str | None = None,
                    limit: int = 50) -> list[CardMatch]:
    """Up to ``limit`` cards whose number starts with ``prefix`` (as numbers are written, in
    capitals), by number, those after number ``after``: one range of the number index, a keyset page."""
    query = (select(Card.number, Card.state, Card.requested_at)
             .where(*in_range(Card.number, number_bounds(SearchFilter(number=prefix)))))
    if after is not None:
        query = query.where(Card.number > after)
    return [CardMatch(*row) for row in session.execute(query.order_by(Card.number).limit(limit))]


def count_by_prefix(session: Session, prefix: str, cap: int = 1000) -> int:
    """How many card numbers start with ``prefix``, counted up to ``cap + 1`` (more means "more than cap")."""
    matching = (select(Card.number).where(*in_range(Card.number, number_bounds(SearchFilter(number=prefix))))
                .limit(cap + 1).subquery())
    return session.scalar(select(func.count()).select_from(matching)) or 0
