"""Steps and looks of the console shared by the web tests."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from engine.db import unit_of_work
from tasks.store import Card


def card_states(services) -> dict[str, str]:
    """Card number -> state."""
    with unit_of_work(services.sessions) as session:
        return dict(session.execute(select(Card.number, Card.state)).all())


def count(services, table) -> int:
    """Rows in ``table``."""
    with unit_of_work(services.sessions) as session:
        return session.scalar(select(func.count()).select_from(table))


def title(page: str) -> str:
    """The page's heading."""
    return re.search(r"<h1>([^<]+)</h1>", page).group(1)


def issue(op, instance_id: str, card_ids: list[int]) -> str:
    """Search TC-00001*, tick ``card_ids`` and press Issue multiple temporary cards; the next page."""
    pairs = [("action", "issue")] + [("card", str(cid)) for cid in card_ids]
    response = op.submit(instance_id, pairs, args={"number": "TC-00001"})
    assert response.status_code == 303, response.get_data(as_text=True)
    return op.order_page(instance_id)
