"""Producing an order's cards: one card at a time, one transaction per step, safe to re-run.

Per-card outcomes go to ``production_attempts`` and ``order_cards``; the workflow only learns the
totals. An attempt left ``started`` by a crash is never retried blindly (the printer may have
printed it): it is recorded as interrupted and the card as failed, for Repeat production.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tasks.cards import CardState
from tasks.cardsdk.job import CardJob, CardSdkError
from tasks.cardsdk.station import Station
from tasks.orders import get_open_order
from tasks.queries import progress
from tasks.recording import Actor, move_card
from tasks.store import Card, Order, OrderCard, ProductionAttempt, utcnow

log = logging.getLogger(__name__)

INTERRUPTED = "Production was interrupted (the system stopped mid-card); check the printer and repeat."


@dataclass
class ProductionContext:
    """What producing needs besides the order: the station, where to spool, who asked."""

    sessions: sessionmaker[Session]
    station: Station
    spool_root: Path
    organisation: str
    user: str


def attempt_ref(order_id: int, card_id: int, attempt: int) -> str:
    """The tag that custody and CA records carry for one attempt."""
    return f"order-{order_id}/card-{card_id}/attempt-{attempt}"


def produce_order(ctx: ProductionContext, order_id: int) -> dict[str, int]:
    """Produce every pending card of the order; returns the order's progress counts."""
    _close_interrupted(ctx, order_id)
    while (card_id := _next_pending(ctx, order_id)) is not None:
        _produce_card(ctx, order_id, card_id)
    with ctx.sessions() as session:
        return progress(session, order_id)


def repeat_order(ctx: ProductionContext, order_id: int) -> dict[str, int]:
    """Spoil the misprinted cards the operator picked, then produce the picked cards again."""
    with ctx.sessions.begin() as session:
        get_open_order(session, order_id)
        picked = session.scalars(select(OrderCard).where(
            OrderCard.order_id == order_id, OrderCard.repeat_requested.is_(True))).all()
        spoiled = []
        for item in picked:
            latest = _latest_attempt(session, order_id, item.card_id)
            if item.misprint_reason and latest is not None and latest.spoiled_at is None:
                latest.spoiled_reason, latest.spoiled_at = item.misprint_reason, utcnow()
                spoiled.append((attempt_ref(order_id, item.card_id, latest.attempt), item.misprint_reason))
            item.status, item.repeat_requested = "pending", False
    for ref, reason in spoiled:
        ctx.station.spoil(ref, f"misprint: {reason}")
    return produce_order(ctx, order_id)


def _latest_attempt(session: Session, order_id: int, card_id: int) -> ProductionAttempt | None:
    return session.scalar(select(ProductionAttempt).where(
        ProductionAttempt.order_id == order_id, ProductionAttempt.card_id == card_id)
        .order_by(ProductionAttempt.attempt.desc()).limit(1))


def _next_pending(ctx: ProductionContext, order_id: int) -> int | None:
    with ctx.sessions() as session:
        return session.scalar(select(OrderCard.card_id).where(
            OrderCard.order_id == order_id, OrderCard.status == "pending")
            .order_by(OrderCard.card_id).limit(1))


def _close_interrupted(ctx: ProductionContext, order_id: int) -> None:
    """Attempts a crash left open become failures; their cards wait for Repeat production."""
    spoiled = []
    with ctx.sessions.begin() as session:
        order = session.get(Order, order_id)
        for attempt in session.scalars(select(ProductionAttempt).where(
                ProductionAttempt.order_id == order_id, ProductionAttempt.outcome == "started")):
            attempt.outcome, attempt.error, attempt.finished_at = "interrupted", INTERRUPTED, utcnow()
            attempt.spoiled_reason, attempt.spoiled_at = "interrupted", utcnow()
            _fail_card(session, order, attempt.card_id, INTERRUPTED, ctx.user)
            spoiled.append(attempt_ref(order_id, attempt.card_id, attempt.attempt))
    # Revocation writes through the CA's own sessions: only after our transaction has ended.
    for ref in spoiled:
        ctx.station.spoil(ref, "interrupted")


def _fail_card(session: Session, order: Order, card_id: int, reason: str, user: str) -> None:
    card = session.get(Card, card_id)
    item = session.get(OrderCard, (order.id, card_id))
    item.status = "failed"
    move_card(session, card, CardState.FAILED, Actor(user, order), f"Production failed: {reason}")


def _produce_card(ctx: ProductionContext, order_id: int, card_id: int) -> None:
    # Step 1: record that this attempt has started, before anything physical happens.
    with ctx.sessions.begin() as session:
        order = get_open_order(session, order_id)
        card = session.get(Card, card_id)
        number = (session.scalar(select(func.max(ProductionAttempt.attempt)).where(
            ProductionAttempt.order_id == order_id, ProductionAttempt.card_id == card_id)) or 0) + 1
        session.add(ProductionAttempt(order_id=order_id, card_id=card_id, attempt=number, outcome="started"))
        options = order.options
        job = CardJob(
            card_id=card.id, card_number=card.number, organisation=card.organisation or ctx.organisation,
            valid_until=(utcnow() + timedelta(days=options["validity_days"])).date(),
            attempt_ref=attempt_ref(order_id, card_id, number),
            spool_dir=ctx.spool_root / f"order-{order_id}",
            encode=options["encode_card"], certificates=tuple(options["certificates"]),
            pin_length=options["pin_length"], puk_length=options["puk_length"],
            validity_days=options["validity_days"])
    # Step 2: the physical work, outside any transaction.
    try:
        result, error = ctx.station.produce(job, f"a{number}"), None
    except CardSdkError as failure:
        result, error = None, str(failure)
    except Exception as failure:  # a defect, not a card problem: the card fails, the order goes on
        log.exception("producing card %s failed unexpectedly", job.card_number)
        result, error = None, f"Unexpected error in the station ({type(failure).__name__}); see the log."
    # Step 3: record the outcome and move the card.
    with ctx.sessions.begin() as session:
        order = session.get(Order, order_id)
        attempt = session.scalar(select(ProductionAttempt).where(
            ProductionAttempt.order_id == order_id, ProductionAttempt.card_id == card_id,
            ProductionAttempt.attempt == number))
        attempt.finished_at = utcnow()
        if result is None:
            attempt.outcome, attempt.error = "failed", error
            _fail_card(session, order, card_id, error, ctx.user)
            return
        attempt.outcome, attempt.physical_serial = "produced", result.physical_serial
        attempt.files = [str(Path(f).relative_to(ctx.spool_root)) for f in result.files]
        card = session.get(Card, card_id)
        card.valid_until = datetime.combine(job.valid_until, time.max, tzinfo=UTC)
        session.get(OrderCard, (order_id, card_id)).status = "produced"
        why = "Produced" if number == 1 else f"Produced again (attempt {number})"
        move_card(session, card, CardState.UNASSIGNED, Actor(ctx.user, order),
                  f"{why} on station {ctx.station.name}, physical card {result.physical_serial}.")
