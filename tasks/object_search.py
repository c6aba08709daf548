"""The SEARCH page's card search: status, number prefix and holder, in keyset pages by number.

Every filter is one index range walked in number order, so any page among a million cards costs
a few index entries: no filter walks the unique number index, a status walks
``ix_cards_search_number`` (state, number), a holder walks ``ix_cards_holder`` (holder, number).
The count is exact up to COUNT_CAP, "more than" beyond it (counting a million rows costs more
than the page). Pages are asked for by the number they follow or precede, never an offset.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tasks.queries import in_range
from tasks.store import Card, Holder

COUNT_CAP = 1000
# A holder typed as a name start may match many people; their cards are listed for this many.
MAX_HOLDERS = 50


@dataclass(frozen=True)
class CardQuery:
    """What to search: a state (None: any), a number prefix as numbers are written, holder ids."""

    state: str | None = None
    prefix: str = ""
    holder_ids: tuple[int, ...] | None = None  # None: any holder; (): nobody matched


@dataclass(frozen=True)
class FoundCard:
    """One line of the result."""

    id: int
    number: str
    state: str
    valid_until: object
    holder_id: int | None
    holder_name: str | None
    holder_identifier: str | None


@dataclass
class CardPage:
    """A page of cards in number order, how many match (capped) and the links around it."""

    items: list[FoundCard]
    total: int
    capped: bool
    has_next: bool = False
    has_previous: bool = False


def _where(query: CardQuery) -> list:
    """The conditions of ``query``, each an index range in number order."""
    where = []
    if query.state is not None:
        where.append(Card.state == query.state)
    if query.prefix:
        where += in_range(Card.number, (query.prefix, query.prefix + "\uffff"))
    if query.holder_ids is not None:
        where.append(Card.holder_id.in_(query.holder_ids))
    return where


def search_cards(session: Session, query: CardQuery, after: str | None = None, before: str | None = None,
                 per_page: int = 50) -> CardPage:
    """One page of the cards matching ``query``: the first, the one after the number ``after``,
    or the one before the number ``before``."""
    if query.holder_ids == ():
        return CardPage([], 0, False)
    where = _where(query)
    total = session.scalar(select(func.count()).select_from(
        select(Card.id).where(*where).limit(COUNT_CAP + 1).subquery())) or 0
    forward = before is None
    past = [Card.number > after] if after else [Card.number < before] if before else []
    rows = session.execute(
        select(Card.id, Card.number, Card.state, Card.valid_until, Card.holder_id, Holder.name,
               Holder.identifier)
        .outerjoin(Holder, Holder.id == Card.holder_id)
        .where(*where, *past).order_by(Card.number if forward else Card.number.desc())
        .limit(per_page + 1)).all()
    items = [FoundCard(*row) for row in rows[:per_page]]
    more = len(rows) > per_page
    if not forward:
        items.reverse()
    page = CardPage(items, min(total, COUNT_CAP), total > COUNT_CAP)
    page.has_next = more if forward else bool(items)
    page.has_previous = bool(after) if forward else more
    if page.has_next and not forward:
        page.has_next = session.scalar(select(Card.id).where(*where, Card.number > items[-1].number)
                                       .limit(1)) is not None
    return page


def number_letters(session: Session) -> tuple[str, ...]:
    """The letters of the smallest and the largest card number (one value when they agree):
    what digits typed alone are completed with. Two seeks of the unique number index."""
    ends = [session.scalar(select(Card.number).order_by(order).limit(1)) for order in (Card.number,
                                                                                        Card.number.desc())]
    return tuple(dict.fromkeys(number.split("-", 1)[0] for number in ends if number))
