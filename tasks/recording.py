"""Moving a card to a new state, always together with the record of who, when, why."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, insert, update
from sqlalchemy.orm import Session

from tasks.cards import check_transition
from tasks.errors import TransitionError
from tasks.store import Card, CardEvent, Order, utcnow


@dataclass(frozen=True)
class Actor:
    """Who causes a state change, and in which order (and so which process version)."""

    user: str
    order: Order | None = None


def move_card(session: Session, card: Card, target: str, actor: Actor, reason: str) -> None:
    """Change ``card`` to ``target`` if the card rules allow it, and record the change."""
    check_transition(card.number, card.state, target)
    order = actor.order
    session.add(CardEvent(
        card_id=card.id, actor=actor.user, order_id=order.id if order else None,
        process_id=order.process_id if order else None,
        process_version=order.process_version if order else None,
        from_state=card.state, to_state=target, reason=reason,
    ))
    card.state = target
    card.updated_at = utcnow()


# -- the same records written without ORM objects, for the per-card hot path ------------------

@dataclass(frozen=True)
class CardMoved:
    """A card's recorded state change, as the audit trail tells it."""

    card_number: str
    actor: str
    order_id: int | None
    instance_id: str | None
    process_id: str | None
    process_version: int | None
    from_state: str
    to_state: str
    reason: str


@dataclass(frozen=True)
class AttemptRecorded:
    """A production attempt started ("started") or ended (its outcome), as the trail tells it."""

    card_number: str
    order_id: int
    instance_id: str | None
    attempt: int
    outcome: str
    error: str | None = None
    serial: str | None = None



def write_move(session: Session, card_id: int, moved: CardMoved, valid_until=None) -> None:
    """Move card ``card_id`` as ``moved`` says (setting ``valid_until`` when given), in two
    statements built once.

    The UPDATE only applies from the state the caller read: a card someone else moved meanwhile
    raises TransitionError instead of being overwritten.
    """
    check_transition(moved.card_number, moved.from_state, moved.to_state)
    now = utcnow()
    connection = session.connection()
    params = {"b_id": card_id, "b_from": moved.from_state, "b_to": moved.to_state, "b_at": now}
    if valid_until is None:
        changed = connection.execute(_MOVE, params).rowcount
    else:
        changed = connection.execute(_MOVE_VALID_UNTIL, {**params, "b_valid_until": valid_until}).rowcount
    if not changed:
        raise TransitionError(f"Card {moved.card_number} changed state meanwhile; it cannot become "
                              f"{moved.to_state}.")
    connection.execute(_EVENT, {
        "card_id": card_id, "at": now, "actor": moved.actor, "order_id": moved.order_id,
        "process_id": moved.process_id, "process_version": moved.process_version,
        "from_state": moved.from_state, "to_state": moved.to_state, "reason": moved.reason})


_cards = Card.__table__
_MOVE = (update(_cards).where(_cards.c.id == bindparam("b_id"), _cards.c.state == bindparam("b_from"))
         .values(state=bindparam("b_to"), updated_at=bindparam("b_at")))
_MOVE_VALID_UNTIL = _MOVE.values(valid_until=bindparam("b_valid_until"))
_EVENT = insert(CardEvent.__table__)
