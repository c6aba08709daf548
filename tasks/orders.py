"""Batch orders: open, select, reserve, ask for repeats, release, complete.

Every function is idempotent for its order, so a step re-run after a crash changes nothing twice.
The one-open-order rule is the ``reservations`` primary key; the checks here only turn a
conflict into a message that names the card and the order holding it. Selections, reservations
and order cards are always written in card order, so orders racing for the same cards wait for
one another instead of deadlocking; a deadlock PostgreSQL breaks anyway is tried again, and then
told to the operator in words, never as the database's error.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from sqlalchemy import delete, func, insert, literal, select, union, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from tasks.cards import CardState
from tasks.errors import NotFoundError, OrderClosedError, SelectionError
from tasks.queries import SearchFilter, requested_cards
from tasks.recording import Actor, move_card
from tasks.store import Card, Order, OrderCard, ProductionAttempt, Reservation, Selection, utcnow


def open_order(session: Session, instance_id: str, process_id: str, process_version: int,
               options_name: str, options_version: int, options: dict, user: str) -> Order:
    """The order of ``instance_id``, created with its option snapshot on first call."""
    order = session.scalar(select(Order).where(Order.instance_id == instance_id))
    if order is None:
        order = Order(instance_id=instance_id, process_id=process_id, process_version=process_version,
                      options_name=options_name, options_version=options_version, options=options,
                      status="open", created_by=user)
        session.add(order)
        session.flush()
    return order


def get_open_order(session: Session, order_id: int) -> Order:
    """The order, which must still be open."""
    order = session.get(Order, order_id)
    if order is None:
        raise NotFoundError(f"No order {order_id}.")
    if order.status != "open":
        raise OrderClosedError(f"Order {order_id} is {order.status}; it cannot be changed.")
    return order


def _taken_message(session: Session, card_ids, order_id: int) -> str | None:
    """A message naming the first of ``card_ids`` that another open order holds, if any."""
    taken = _taken(session, card_ids, order_id)
    return None if taken is None else f"{taken}; choose other cards."


@dataclass(frozen=True)
class _Taken:
    """A card another open order holds."""

    card_id: int
    number: str
    order_id: int

    def __str__(self) -> str:
        return f"Card {self.number} is already taken by order {self.order_id}"


def _taken(session: Session, card_ids, order_id: int) -> _Taken | None:
    """The first of ``card_ids`` (by number) that another open order holds."""
    row = session.execute(
        select(Card.id, Card.number, Reservation.order_id)
        .join(Reservation, Reservation.card_id == Card.id)
        .where(Card.id.in_(card_ids), Reservation.order_id != order_id)
        .order_by(Card.number).limit(1)).first()
    if row is None:
        return None
    return _Taken(*row)


@dataclass(frozen=True)
class SelectionProblem:
    """Why cards cannot be selected, and the card at fault when it is one of them."""

    message: str
    card_id: int | None = None


def selection_problem(session: Session, order_id: int, card_ids: list[int]) -> SelectionProblem | None:
    """What keeps ``card_ids`` out of the order's selection (reads only): unknown cards, cards not
    requested, cards another open order holds; None when they can all be selected."""
    wanted = sorted(set(card_ids))
    if not wanted:
        return None
    found = {row.id: row for row in session.execute(
        select(Card.id, Card.number, Card.state).where(Card.id.in_(wanted)))}
    unknown = [str(cid) for cid in wanted if cid not in found]
    if unknown:
        return SelectionProblem(f"Unknown card id(s): {', '.join(unknown[:10])}. Search again.")
    wrong = [found[cid] for cid in wanted if found[cid].state != CardState.REQUESTED]
    if wrong:
        listed = ", ".join(f"{row.number} ({row.state})" for row in wrong[:10])
        return SelectionProblem(f"Only requested cards can be issued; not: {listed}.", wrong[0].id)
    taken = _taken(session, wanted, order_id)
    return SelectionProblem(f"{taken}; choose other cards.", taken.card_id) if taken else None


def stage_selection(session: Session, order_id: int, card_ids: list[int] | None = None,
                    match: SearchFilter | None = None) -> int:
    """Replace the order's ticked cards with ``card_ids`` or all cards that ``match``."""
    get_open_order(session, order_id)
    if card_ids:
        wanted = sorted(set(card_ids))
        problem = selection_problem(session, order_id, wanted)
        if problem:
            raise SelectionError(problem.message)
        source = select(Card.id).where(Card.id.in_(wanted))
    elif match is not None:
        held_elsewhere = select(Reservation.card_id).where(Reservation.order_id != order_id)
        source = requested_cards(match).where(Card.id.not_in(held_elsewhere))
    else:
        raise SelectionError("Select at least one card, or tick \"Select all matching\".")
    ids = source.subquery().c.id

    def stage() -> None:
        session.execute(delete(Selection).where(Selection.order_id == order_id))
        # Rows locked in card order by every writer cannot wait on each other in a cycle.
        session.execute(insert(Selection).from_select(
            ["order_id", "card_id"], select(literal(order_id), ids).order_by(ids)))

    if not _retrying(session, stage):
        raise SelectionError(_race_message(session, order_id, select(ids)))
    # Not the INSERT's rowcount: PostgreSQL (psycopg) reports -1 for an INSERT ... SELECT.
    count = session.scalar(select(func.count()).select_from(Selection).where(Selection.order_id == order_id))
    if not count:
        raise SelectionError("No available requested card matches; change the search.")
    return count


def reserve(session: Session, order_id: int) -> dict:
    """Turn the staged selection into reservations; ``ok`` False names a card taken meanwhile.

    A refusal also drops the order's staged selection, so nothing of a lost race stays behind:
    the operator is back at Search, and the next Issue stages the cards afresh.
    """
    order = get_open_order(session, order_id)
    held = session.scalar(select(func.count()).where(Reservation.order_id == order_id))
    if held:
        return {"ok": True, "count": held, "error": None}
    staged = select(Selection.card_id).where(Selection.order_id == order_id)
    card_ids = list(session.scalars(staged))
    if not card_ids:
        return {"ok": False, "count": 0, "error": "No cards are selected; search and tick cards."}
    not_requested = session.scalar(select(Card.number).where(
        Card.id.in_(staged), Card.state != CardState.REQUESTED).order_by(Card.number).limit(1))
    if not_requested:
        return _refused(session, order_id, f"Card {not_requested} is no longer requested.")
    taken = _taken_message(session, staged, order_id)
    if taken:
        return _refused(session, order_id, taken)

    def take() -> None:
        # Card order, as in stage_selection: a "tick" and a "select all matching" of the same
        # cards would otherwise insert them in different orders and deadlock on PostgreSQL.
        session.execute(insert(Reservation).from_select(
            ["card_id", "order_id"], select(Selection.card_id, literal(order.id))
            .where(Selection.order_id == order_id).order_by(Selection.card_id)))
        session.execute(insert(OrderCard).from_select(
            ["order_id", "card_id", "status", "repeat_requested"],
            select(literal(order_id), Selection.card_id, literal("pending"), literal(False))
            .where(Selection.order_id == order_id).order_by(Selection.card_id)))

    try:
        if not _retrying(session, take):
            return _refused(session, order_id, _race_message(session, order_id, staged))
    except IntegrityError:
        # Another order reserved one of these cards between our check and our insert.
        return _refused(session, order_id, _taken_message(session, staged, order_id)
                        or "A selected card was taken by another order; choose other cards.")
    session.execute(delete(Selection).where(Selection.order_id == order_id))
    return {"ok": True, "count": len(card_ids), "error": None}


# SQLSTATEs of a transaction PostgreSQL gave up on because of another one: worth another try.
_LOST_RACE = {"40P01", "40001"}  # deadlock_detected, serialization_failure
_ATTEMPTS = 3


def _retrying(session: Session, work) -> bool:
    """Run ``work`` in a savepoint, again when it lost a deadlock; False when it lost every time.

    Rolling back to the savepoint also frees the rows it locked, so the other transaction goes on,
    and the retry then waits for it instead of deadlocking again.
    """
    for attempt in range(_ATTEMPTS):
        try:
            with session.begin_nested():
                work()
            return True
        except DBAPIError as error:
            if getattr(error.orig, "sqlstate", None) not in _LOST_RACE:
                raise
            time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))
    return False


def _race_message(session: Session, order_id: int, mine) -> str:
    """What the operator reads when another order kept locking the same cards (of ``mine``)."""
    elsewhere = union(select(Selection.card_id).where(Selection.order_id != order_id),
                      select(Reservation.card_id).where(Reservation.order_id != order_id))
    numbers = list(session.scalars(select(Card.number).where(Card.id.in_(mine), Card.id.in_(elsewhere))
                                   .order_by(Card.number).limit(4)))
    if not numbers:
        numbers = list(session.scalars(select(Card.number).where(Card.id.in_(mine))
                                       .order_by(Card.number).limit(4)))
    cards = ", ".join(numbers[:3]) + (" and more" if len(numbers) > 3 else "")
    return (f"Another order was reserving the same cards ({cards}) at the same moment; "
            "press Issue again.")


def _refused(session: Session, order_id: int, error: str) -> dict:
    """A refused reservation: the order keeps nothing staged, reserved or listed."""
    session.execute(delete(Selection).where(Selection.order_id == order_id))
    return {"ok": False, "count": 0, "error": error}


def request_repeat(session: Session, order_id: int, card_ids: list[int], misprints: dict[int, str]) -> int:
    """Mark the cards to produce again: failed ones, or produced ones marked misprinted with a reason."""
    get_open_order(session, order_id)
    problem = repeat_problem(session, order_id, card_ids, misprints)
    if problem is not None:
        raise SelectionError(problem)
    wanted = sorted(set(card_ids) | set(misprints))
    items = {item.card_id: item for item in session.scalars(
        select(OrderCard).where(OrderCard.order_id == order_id, OrderCard.card_id.in_(wanted)))}
    # The marks of an earlier post that never reached the engine must not ride along.
    session.execute(update(OrderCard).where(OrderCard.order_id == order_id)
                    .values(repeat_requested=False, misprint_reason=None))
    for cid in wanted:
        items[cid].repeat_requested = True
        items[cid].misprint_reason = (misprints.get(cid) or "").strip() or None
    return len(wanted)


def release(session: Session, order_id: int, user: str) -> dict:
    """Cancel an order before production: no card changes, its reservations are freed."""
    order = session.get(Order, order_id)
    if order is None:
        raise NotFoundError(f"No order {order_id}.")
    if order.status == "open":
        order.status, order.closed_at = "cancelled", utcnow()
    session.execute(delete(Reservation).where(Reservation.order_id == order_id))
    session.execute(delete(Selection).where(Selection.order_id == order_id))
    session.execute(update(OrderCard).where(OrderCard.order_id == order_id, OrderCard.status == "pending")
                    .values(status="released"))
    return {"status": order.status}


def complete(session: Session, order_id: int, outcome: str, user: str) -> dict:
    """End an order (``completed`` or ``cancelled``); its failed cards go back to requested."""
    if outcome not in ("completed", "cancelled"):
        raise ValueError(f"outcome must be completed or cancelled, not {outcome!r}")
    order = session.get(Order, order_id)
    if order is None:
        raise NotFoundError(f"No order {order_id}.")
    returned = 0
    if order.status == "open":
        actor = Actor(user, order)
        failed = session.scalars(select(Card).join(OrderCard, OrderCard.card_id == Card.id).where(
            OrderCard.order_id == order_id, Card.state == CardState.FAILED)).all()
        for card in failed:
            move_card(session, card, CardState.REQUESTED, actor,
                      f"Order {order_id} {outcome} with the card's production failed; back to requested.")
            returned += 1
        order.status, order.closed_at = outcome, utcnow()
    session.execute(delete(Reservation).where(Reservation.order_id == order_id))
    return {"status": order.status, "returned_to_requested": returned}


def abandon(session: Session, instance_id: str, user: str) -> None:
    """The instance of an order was cancelled after an error: end the order as cancelled, free its
    reservations and selection, send its failed cards back to requested (nothing if no order)."""
    order = session.scalar(select(Order).where(Order.instance_id == instance_id))
    if order is None:
        return
    complete(session, order.id, "cancelled", user)
    release(session, order.id, user)


def produced_orders(session: Session, order_ids: list[int]) -> set[int]:
    """Those of ``order_ids`` that have produced something: a production attempt, whatever came of it."""
    if not order_ids:
        return set()
    return set(session.scalars(select(ProductionAttempt.order_id).distinct()
                               .where(ProductionAttempt.order_id.in_(order_ids))))


def discard_problem(session: Session, instance_id: str) -> str | None:
    """Why the order of ``instance_id`` cannot be discarded (reads only), or None when it can: it
    is open and has produced nothing (or the instance never opened its order)."""
    order = session.scalar(select(Order).where(Order.instance_id == instance_id))
    if order is None:
        return None
    if order.status != "open":
        return f"Order {order.id} is already {order.status}."
    if produced_orders(session, [order.id]):
        return (f"Order {order.id} has produced cards, so it cannot be discarded: open it, then "
                "Complete order or Cancel on its Review production step.")
    return None


def repeat_problem(session: Session, order_id: int, card_ids: list[int],
                   misprints: dict[int, str]) -> str | None:
    """What keeps Repeat production from taking ``card_ids`` (failed cards) and ``misprints``
    (produced cards with the reason) (reads only), or None when it can take them all."""
    wanted = sorted(set(card_ids) | set(misprints))
    if not wanted:
        return "Tick the cards to produce again."
    status = dict(session.execute(select(OrderCard.card_id, OrderCard.status).where(
        OrderCard.order_id == order_id, OrderCard.card_id.in_(wanted))).all())
    outside = [str(cid) for cid in wanted if cid not in status]
    if outside:
        return f"Card id(s) {', '.join(outside[:10])} are not in this order."
    numbers = dict(session.execute(select(Card.id, Card.number).where(Card.id.in_(wanted))).all())
    for cid in wanted:
        reason = (misprints.get(cid) or "").strip()
        if cid in misprints and not reason:
            return f"Card {numbers[cid]}: say why it is misprinted."
        if status[cid] == "produced" and not reason:
            return (f"Card {numbers[cid]} was produced correctly; mark it misprinted with a reason to "
                    "produce it again.")
        if status[cid] == "pending":
            return f"Card {numbers[cid]} has not been produced yet."
    return None
