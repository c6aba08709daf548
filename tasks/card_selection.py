"""The cards an operator has selected for an order, kept across the picker's pages and searches.

They are rows of ``selections`` until the Reserve step turns them into reservations. Ticks add
cards, unticking a card the page showed removes it, "Select this page" adds the page's available
cards, "Select all matching" every available card of a search, Clear removes them all. Cards are
checked before they are added (tasks.orders.selection_problem: known, requested, not held by
another order), and rows are added with "do nothing" on conflict, so a post sent twice, or from
two tabs at once, adds nothing twice and fails on nothing.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import delete, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tasks.errors import SelectionError
from tasks.orders import get_open_order, selection_problem
from tasks.queries import SearchFilter, requested_cards
from tasks.store import Card, Reservation, Selection


def selected_count(session: Session, order_id: int) -> int:
    """How many cards the order has selected."""
    mine = select(func.count()).select_from(Selection).where(Selection.order_id == order_id)
    return session.scalar(mine) or 0


def selected_numbers(session: Session, order_id: int, limit: int) -> list[str]:
    """The numbers of the first ``limit`` selected cards, in number order."""
    return list(session.scalars(select(Card.number).join(Selection, Selection.card_id == Card.id)
                                .where(Selection.order_id == order_id).order_by(Card.number).limit(limit)))


def selected_among(session: Session, order_id: int, card_ids: Collection[int]) -> set[int]:
    """Which of ``card_ids`` the order has selected (what a page shows ticked)."""
    if not card_ids:
        return set()
    return set(session.scalars(select(Selection.card_id).where(Selection.order_id == order_id,
                                                               Selection.card_id.in_(card_ids))))


def change_selection(session: Session, order_id: int, add: Collection[int], remove: Collection[int]) -> None:
    """Add ``add`` to the order's selection and take ``remove`` out of it; SelectionError (and
    nothing changed) when a card of ``add`` cannot be selected."""
    get_open_order(session, order_id)
    problem = selection_problem(session, order_id, list(add))
    if problem is not None:
        raise SelectionError(problem.message)
    dropped = sorted(set(remove) - set(add))
    if dropped:
        session.execute(delete(Selection).where(Selection.order_id == order_id,
                                                Selection.card_id.in_(dropped)))
    if add:
        ids = select(Card.id).where(Card.id.in_(sorted(set(add)))).subquery().c.id
        _insert_new(session, select(literal(order_id), ids).order_by(ids))


def select_available(session: Session, order_id: int, card_ids: Collection[int]) -> None:
    """Add those of ``card_ids`` that can be selected (requested, held by no other order): what
    "Select this page" does with the cards a page lists, some of them taken by other orders."""
    get_open_order(session, order_id)
    if card_ids:
        available = requested_cards(SearchFilter()).where(Card.id.not_in(_held_elsewhere(order_id)))
        ids = available.where(Card.id.in_(sorted(set(card_ids)))).subquery().c.id
        _insert_new(session, select(literal(order_id), ids).order_by(ids))


def select_matching(session: Session, order_id: int, match: SearchFilter) -> None:
    """Add every requested card that ``match`` finds and no other order holds."""
    get_open_order(session, order_id)
    ids = requested_cards(match).where(Card.id.not_in(_held_elsewhere(order_id))).subquery().c.id
    _insert_new(session, select(literal(order_id), ids).order_by(ids))


def clear_selection(session: Session, order_id: int) -> None:
    """Select nothing."""
    get_open_order(session, order_id)
    session.execute(delete(Selection).where(Selection.order_id == order_id))


def _held_elsewhere(order_id: int):
    """The ids of the cards other open orders hold."""
    return select(Reservation.card_id).where(Reservation.order_id != order_id)


def _insert_new(session: Session, rows) -> None:
    """Insert (order_id, card_id) ``rows`` into selections, skipping those already there. Rows go
    in card order, as every writer of card rows here does, so no two wait on each other in a cycle."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(dialect.insert(Selection).from_select(["order_id", "card_id"], rows)
                    .on_conflict_do_nothing())
