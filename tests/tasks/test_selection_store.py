"""An order's selection of cards, kept across the picker's pages and searches, on both databases:
ticks add, unticks remove, "Select this page" and "Select all matching" add what is available,
Clear empties it; a card that cannot be selected changes nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select, update

from engine import bootstrap
from engine.db import make_engine, make_sessions, unit_of_work
from tasks.card_selection import (
    change_selection,
    clear_selection,
    select_available,
    select_matching,
    selected_among,
    selected_count,
    selected_numbers,
)
from tasks.demo import add_requested_cards
from tasks.errors import OrderClosedError, SelectionError
from tasks.orders import open_order
from tasks.queries import SearchFilter
from tasks.store import Card, Order, Reservation, Selection
from tests.conftest import make_settings


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def sessions(request, tmp_path) -> Iterator:
    """Sessions on a migrated database with 12 requested cards and two open orders (1 and 2);
    order 2 holds card 12."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    settings = make_settings(tmp_path / "instance", url)
    bootstrap.init_database(settings)
    engine = make_engine(settings.database_url)
    sessions = make_sessions(engine)
    with unit_of_work(sessions) as session:
        add_requested_cards(session, 12, "Test Organisation")
        for n in (1, 2):
            open_order(session, f"instance-{n}", "P", 1, "Options", 1, {}, f"op{n}")
        session.add(Reservation(card_id=12, order_id=2))
    yield sessions
    engine.dispose()


def staged(sessions, order_id: int = 1) -> list[int]:
    """The order's selected card ids."""
    with unit_of_work(sessions) as session:
        return sorted(session.scalars(select(Selection.card_id).where(Selection.order_id == order_id)))


def test_ticks_add_and_unticks_of_shown_cards_remove(sessions):
    with unit_of_work(sessions) as session:
        change_selection(session, 1, add=[1, 2], remove=[1, 2, 3])
    with unit_of_work(sessions) as session:
        change_selection(session, 1, add=[3, 2], remove=[1, 2, 3, 4])
    assert staged(sessions) == [2, 3]
    with unit_of_work(sessions) as session:
        assert selected_count(session, 1) == 2 and selected_numbers(session, 1, 1) == ["TC-000002"]
        assert selected_among(session, 1, [1, 2, 3, 4]) == {2, 3} and selected_among(session, 1, []) == set()


def test_the_same_ticks_twice_add_nothing_twice(sessions):
    for _ in range(2):
        with unit_of_work(sessions) as session:
            change_selection(session, 1, add=[5, 6], remove=[])
    assert staged(sessions) == [5, 6]


@pytest.mark.parametrize(("add", "message"), [
    ([1, 12], "Card TC-000012 is already taken by order 2; choose other cards."),
    ([1, 999], r"Unknown card id\(s\): 999\. Search again\."),
])
def test_a_card_that_cannot_be_selected_changes_nothing(sessions, add, message):
    with unit_of_work(sessions) as session:
        change_selection(session, 1, add=[3], remove=[])
    with pytest.raises(SelectionError, match=message), unit_of_work(sessions) as session:
        change_selection(session, 1, add=add, remove=[3])
    assert staged(sessions) == [3]


def test_a_card_no_longer_requested_cannot_be_ticked(sessions):
    with unit_of_work(sessions) as session:
        session.execute(update(Card).where(Card.id == 4).values(state="aborted"))
    aborted = r"not: TC-000004 \(aborted\)"
    with pytest.raises(SelectionError, match=aborted), unit_of_work(sessions) as session:
        change_selection(session, 1, add=[4], remove=[])
    assert staged(sessions) == []


def test_select_this_page_takes_only_available_cards(sessions):
    with unit_of_work(sessions) as session:
        session.execute(update(Card).where(Card.id == 11).values(state="aborted"))
        select_available(session, 1, [9, 10, 11, 12, 999])
    assert staged(sessions) == [9, 10]


def test_select_all_matching_adds_to_what_was_ticked(sessions):
    with unit_of_work(sessions) as session:
        change_selection(session, 1, add=[2], remove=[])
        select_matching(session, 1, SearchFilter("TC-00001"))
    assert staged(sessions) == [2, 10, 11]


def test_clear_empties_only_this_orders_selection(sessions):
    with unit_of_work(sessions) as session:
        change_selection(session, 1, add=[1, 2], remove=[])
        change_selection(session, 2, add=[1], remove=[])
        clear_selection(session, 1)
    assert staged(sessions, 1) == [] and staged(sessions, 2) == [1]


def test_a_closed_order_keeps_its_selection_as_it_was(sessions):
    with unit_of_work(sessions) as session:
        session.execute(update(Order).where(Order.id == 1).values(status="completed"))
    for change in (lambda s: change_selection(s, 1, add=[1], remove=[]), lambda s: clear_selection(s, 1),
                   lambda s: select_available(s, 1, [1]), lambda s: select_matching(s, 1, SearchFilter())):
        with pytest.raises(OrderClosedError), unit_of_work(sessions) as session:
            change(session)
    assert staged(sessions) == []
