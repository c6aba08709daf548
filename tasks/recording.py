"""Moving a card to a new state, always together with the record of who, when, why."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from tasks.cards import check_transition
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
