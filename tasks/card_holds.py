"""A card held by the open process that acts on it: one process per card at a time.

Starting a card process (Lock, Withdraw, Assign...) records a hold in the starting transaction;
the engine releases it in the transaction that ends the instance (completed or cancelled). The
primary key of ``card_holds`` is the card: when two operators start a process on the same card
at the same moment, the database takes one hold and refuses the other, which is then told which
process holds the card. A card in an open batch order (``reservations``) is held by that order.
The card's handlers find their card through the hold, never through data a form could carry.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from tasks.errors import CardflowError
from tasks.store import Base, Card, Order, Reservation, utcnow


class CardHold(Base):
    """The open process instance that holds a card, and who started it."""

    __tablename__ = "card_holds"

    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id"), primary_key=True)
    instance_id: Mapped[str] = mapped_column(String(36), unique=True)
    process_id: Mapped[str] = mapped_column(String(200))
    process_name: Mapped[str] = mapped_column(String(200))
    held_by: Mapped[str] = mapped_column(String(100))
    held_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CardHeldError(CardflowError):
    """The card is held by another open process (or batch order); the message names it."""


def holder_of(session: Session, card: Card) -> str | None:
    """What holds ``card`` now, said for the operator ("... holds it"), or None when it is free."""
    hold = session.get(CardHold, card.id)
    if hold is not None:
        return (f"Card {card.number} is held by the open process \u201c{hold.process_name}\u201d that "
                f"{hold.held_by} started on {hold.held_at:%Y-%m-%d %H:%M} UTC; it must end first.")
    order_id = session.scalar(select(Reservation.order_id).join(Order, Order.id == Reservation.order_id)
                              .where(Reservation.card_id == card.id, Order.status == "open"))
    if order_id is not None:
        return f"Card {card.number} is reserved by the open batch order {order_id}; it must end first."
    return None


def hold_card(session: Session, card: Card, instance_id: str, process_id: str, process_name: str,
              user: str) -> None:
    """Record that ``instance_id`` holds ``card``; CardHeldError (nothing written) if it is taken."""
    taken = holder_of(session, card)
    if taken is not None:
        raise CardHeldError(taken)
    try:
        with session.begin_nested():
            session.add(CardHold(card_id=card.id, instance_id=instance_id, process_id=process_id,
                                 process_name=process_name[:200], held_by=user))
    except IntegrityError:  # another start took it between our look and our write
        raise CardHeldError(holder_of(session, card) or f"Card {card.number} was just taken by another "
                                                         "process; look at the card again.") from None


def release_holds(session: Session, instance_id: str) -> None:
    """Let go of whatever ``instance_id`` held (it has ended)."""
    session.execute(delete(CardHold).where(CardHold.instance_id == instance_id))


def held_card(session: Session, instance_id: str, lock: bool = True) -> Card:
    """The card ``instance_id`` holds (locked for update when asked); CardflowError if none."""
    query = (select(Card).join(CardHold, CardHold.card_id == Card.id)
             .where(CardHold.instance_id == instance_id))
    card = session.scalar(query.with_for_update(of=Card) if lock else query)
    if card is None:
        raise CardflowError("This process holds no card; start it from the card's page.")
    return card


def hold_of(session: Session, card_id: int) -> CardHold | None:
    """The hold on card ``card_id``, or None."""
    return session.get(CardHold, card_id)
