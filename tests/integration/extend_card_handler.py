"""The one handler of the "Extend temporary card" process that test_added_card_process adds with
files only: it lives here, outside engine/, and is published the way tasks' handlers are."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from tasks.card_holds import held_card
from tasks.errors import CardflowError
from tasks.store import CardEvent, utcnow

MAX_DAYS = 30


def build_extend_handlers(sessions: sessionmaker[Session]) -> dict:
    """``card_extend`` (params: days): the held card is valid ``days`` longer, recorded."""

    def card_extend(params: dict, context) -> dict:
        days = params.get("days")
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_DAYS:
            raise CardflowError(f"Extend by 1 to {MAX_DAYS} days, not {days!r}.")
        with sessions.begin() as session:
            card = held_card(session, context.instance_id)
            card.valid_until = (card.valid_until or utcnow()) + timedelta(days=days)
            session.add(CardEvent(card_id=card.id, actor=context.user, process_id=context.process_id,
                                  process_version=context.process_version, instance_id=context.instance_id,
                                  from_state=card.state, to_state=card.state,
                                  reason=f"Valid {days} days longer, until {card.valid_until:%Y-%m-%d}."))
            return {"valid_until": card.valid_until.isoformat()}

    return {"card_extend": card_extend}
