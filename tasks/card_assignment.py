"""Assigning a temporary card to a holder and withdrawing it: the rules, in plain Python.

A card is assigned only while it is unassigned, held by the calling process, to an active holder
who has no other active card (unless the options allow several), and only when its PIN and PUK
are still sealed in custody: a card whose PIN was released to someone before must get fresh keys
and PIN first (withdrawing it re-encodes it). Withdrawing revokes the card's certificates in the
transaction that takes it back (through the revocation queue) and opens a one-card order whose
production gives it new keys, certificates, PIN and PUK before any other process can take it.
Every change is a recorded state change (card history and audit trail), in the caller's
transaction; the handlers find the card through the calling instance's hold, never through data
a form could carry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tasks.assign_options import assign_options
from tasks.card_holds import held_card
from tasks.cards import CardState, check_transition
from tasks.cardsdk.records import CustodySecret
from tasks.errors import CardflowError
from tasks.holders import read_holder_id
from tasks.orders import open_order
from tasks.store import (
    Assignment,
    Card,
    CardEvent,
    Holder,
    OrderCard,
    ProductionAttempt,
    Reservation,
    RevocationRequest,
    utcnow,
)


@dataclass(frozen=True)
class Step:
    """Who runs the step and in which process (what a state change records)."""

    instance_id: str
    user: str
    process_id: str
    process_version: int


def _move(session: Session, card: Card, target: str, step: Step, reason: str) -> None:
    """Move ``card`` to ``target`` if the card rules allow it, recorded with the process."""
    check_transition(card.number, card.state, target)
    session.add(CardEvent(card_id=card.id, actor=step.user[:100], process_id=step.process_id,
                          process_version=step.process_version, from_state=card.state, to_state=target,
                          reason=reason))
    card.state, card.updated_at = target, utcnow()


def sealed_pin_of(session: Session, card_id: int) -> str | None:
    """The attempt whose PIN custody holds sealed for the card, or None: never encoded, or its
    latest PIN already released (to the previous holder)."""
    latest = session.execute(
        select(CustodySecret.attempt_ref, CustodySecret.released_at)
        .where(CustodySecret.card_id == card_id, CustodySecret.kind == "pin")
        .order_by(CustodySecret.created_at.desc(), CustodySecret.id.desc()).limit(1)).first()
    if latest is None or latest.released_at is not None:
        return None
    return latest.attempt_ref


def encoded(session: Session, card_id: int) -> bool:
    """Whether custody ever held a PIN of the card (it was encoded, not only printed)."""
    return session.scalar(select(CustodySecret.id).where(CustodySecret.card_id == card_id,
                                                         CustodySecret.kind == "pin").limit(1)) is not None


def assignment_problem(session: Session, card: Card, holder: Holder | None, several: bool) -> str | None:
    """Why ``card`` cannot be assigned to ``holder`` now (reads only), or None."""
    if holder is None:
        return "The chosen holder does not exist (any more); search and select the holder again."
    if holder.state != "active":
        return f"{holder.name} ({holder.identifier}) is inactive; only an active holder can get a card."
    if card.state != CardState.UNASSIGNED:
        return f"Card {card.number} is {card.state}; only an unassigned card can be assigned."
    if encoded(session, card.id) and sealed_pin_of(session, card.id) is None:
        return (f"Card {card.number}'s PIN was already given out; it needs fresh keys and PIN before another "
                "holder can get it (withdraw it, or produce it again).")
    if not several:
        other = session.scalar(select(Card.number).where(Card.holder_id == holder.id,
                                                         Card.state == CardState.ASSIGNED).limit(1))
        if other is not None:
            return (f"{holder.name} ({holder.identifier}) already has the active temporary card {other}; "
                    "withdraw it first (the options allow one card per holder).")
    return None


def assign(session: Session, step: Step, holder_value: object, options: dict[str, Any]) -> dict:
    """Assign the instance's card to the holder; ``ok`` False with the reason changes nothing.

    The card and the holder rows are locked first, so two assignments racing for the same holder
    (one card each) or the same card see each other's outcome.
    """
    try:
        holder_id = read_holder_id(holder_value)
    except CardflowError as error:
        return {"ok": False, "error": str(error)}
    card = held_card(session, step.instance_id)
    done = open_assignment(session, card.id)
    if card.state == CardState.ASSIGNED and done is not None and done.instance_id == step.instance_id:
        return {"ok": True, "error": None, "holder_id": done.holder_id}  # this step ran before a crash
    holder = session.scalar(select(Holder).where(Holder.id == holder_id).with_for_update())
    several = bool(assign_options(options)["several_cards_per_holder"])
    problem = assignment_problem(session, card, holder, several)
    if problem is not None:
        return {"ok": False, "error": problem}
    _move(session, card, CardState.ASSIGNED, step, f"Assigned to {holder.name} ({holder.identifier}).")
    card.holder_id = holder.id
    session.add(Assignment(card_id=card.id, holder_id=holder.id, instance_id=step.instance_id,
                           assigned_by=step.user[:100]))
    return {"ok": True, "error": None, "holder_id": holder.id}


def open_assignment(session: Session, card_id: int) -> Assignment | None:
    """The card's current assignment (not ended), if any."""
    return session.scalar(select(Assignment)
                          .where(Assignment.card_id == card_id, Assignment.ended_at.is_(None))
                          .order_by(Assignment.id.desc()).limit(1))


def _end_assignment(session: Session, card: Card, step: Step, reason: str) -> Holder | None:
    """End the card's assignment (who, when, why) and clear its holder; the holder it had."""
    assignment = open_assignment(session, card.id)
    holder = session.get(Holder, card.holder_id) if card.holder_id else None
    if assignment is not None:
        assignment.ended_at, assignment.ended_by, assignment.end_reason = utcnow(), step.user[:100], reason
    card.holder_id = None
    return holder


def undo_unlettered(session: Session, step: Step) -> dict:
    """Cancel pressed on the PIN letter step: an assignment whose PIN letter was not printed is
    undone (the card is unassigned again, its PIN still sealed); once printed it stays."""
    card = held_card(session, step.instance_id)
    assignment = open_assignment(session, card.id)
    if (card.state != CardState.ASSIGNED or assignment is None or assignment.instance_id != step.instance_id
            or (encoded(session, card.id) and sealed_pin_of(session, card.id) is None)):
        return {"undone": False}
    holder = _end_assignment(session, card, step, "Cancelled before the PIN letter was printed.")
    who = holder.name if holder else "the holder"
    _move(session, card, CardState.UNASSIGNED, step,
          f"Assignment to {who} cancelled before the PIN letter was printed.")
    return {"undone": True}


def withdraw(session: Session, step: Step) -> dict:
    """Take the instance's card back from its holder: unassigned, certificates queued for
    revocation in this transaction (drained right after, and by every host's sweeper)."""
    card = held_card(session, step.instance_id)
    if card.state == CardState.UNASSIGNED and card.holder_id is None:
        # The process started on an assigned card and has held it since: only this step, run
        # before a crash, can have unassigned it (its revocations were queued with it).
        return {"withdrawn": True, "revocations": 0}
    if card.state != CardState.ASSIGNED:
        raise CardflowError(f"Card {card.number} is {card.state}; only an assigned card can be withdrawn.")
    holder = _end_assignment(session, card, step, "Withdrawn.")
    who = f"{holder.name} ({holder.identifier})" if holder else "its holder"
    _move(session, card, CardState.UNASSIGNED, step,
          f"Withdrawn from {who}; its certificates are revoked and it gets fresh keys and PIN before "
          "its next holder.")
    attempts = session.execute(select(ProductionAttempt.order_id, ProductionAttempt.attempt)
                               .where(ProductionAttempt.card_id == card.id,
                                      ProductionAttempt.outcome == "produced")).all()
    for order_id, attempt in attempts:
        session.add(RevocationRequest(attempt_ref=f"order-{order_id}/card-{card.id}/attempt-{attempt}",
                                      reason=f"withdrawn from {who}"[:200]))
    return {"withdrawn": True, "revocations": len(attempts)}


def open_reencoding(session: Session, step: Step, options: dict[str, Any], options_name: str) -> dict:
    """The one-card order that gives the instance's card fresh keys, certificates, PIN and PUK
    through the production path (the same stations, claims and recording as a batch order)."""
    snapshot = options.get(options_name)
    if snapshot is None:
        raise CardflowError(f"Option script {options_name} is not deployed; run 'cardflow deploy'.")
    card = held_card(session, step.instance_id)
    order = open_order(session, step.instance_id, step.process_id, step.process_version, options_name,
                       snapshot["version"], snapshot["values"], step.user)
    if session.scalar(select(func.count()).where(OrderCard.order_id == order.id)) == 0:
        session.add(Reservation(card_id=card.id, order_id=order.id))
        session.add(OrderCard(order_id=order.id, card_id=card.id, status="pending", repeat_requested=False))
    return {"order_id": order.id}
