"""Demo data: requested temporary cards to issue, as a card request step would leave them."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from tasks.cards import CardState, check_card_number
from tasks.store import Card, CardEvent, utcnow

BATCH = 5000


def add_requested_cards(session: Session, count: int, organisation: str, actor: str = "demo-data") -> int:
    """Add ``count`` requested cards numbered after the existing ones; returns how many were added.

    A number that would not be well formed (ids past twelve digits) raises CardflowError.
    """
    if count < 1:
        raise ValueError("Give a positive number of cards.")
    start = (session.scalar(select(func.max(Card.id))) or 0) + 1
    now = utcnow()
    randomness = random.Random(start)
    for first in range(start, start + count, BATCH):
        ids = range(first, min(first + BATCH, start + count))
        numbers = {cid: f"TC-{cid:06d}" for cid in ids}
        for number in numbers.values():
            check_card_number(number)
        # Plain rows through the table, not ORM objects: a million cards take about half a minute.
        session.execute(insert(Card.__table__), [
            {"id": cid, "number": numbers[cid], "state": CardState.REQUESTED, "organisation": organisation,
             "requested_at": now - timedelta(minutes=randomness.randrange(0, 30 * 24 * 60)),
             "updated_at": now}
            for cid in ids])
        session.execute(insert(CardEvent.__table__), [
            {"card_id": cid, "at": now, "actor": actor, "from_state": None,
             "to_state": CardState.REQUESTED, "reason": "Card requested (demo data)."}
            for cid in ids])
    return count
