"""Two operators can never issue the same card: the database refuses the second reservation,
on SQLite and on PostgreSQL (tests/integration/conftest.py runs each test on both), even when
the application's own checks are raced past."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from engine.db import unit_of_work
from tasks import orders
from tasks.store import Reservation
from tests.integration.flow import add_cards, order_id, start


def _open_orders(services, count):
    ids = []
    for n in range(count):
        instance_id, _task = start(services, user=f"op{n}")
        ids.append(order_id(services, instance_id))
    return ids


def _race(services):
    add_cards(services, 3)
    first, second = _open_orders(services, 2)
    with unit_of_work(services.sessions) as session:
        orders.stage_selection(session, first, card_ids=[1, 2])
        orders.stage_selection(session, second, card_ids=[2, 3])
    barrier, results = threading.Barrier(2), {}

    def reserve(oid):
        barrier.wait()
        with unit_of_work(services.sessions) as session:
            results[oid] = orders.reserve(session, oid)

    threads = [threading.Thread(target=reserve, args=(oid,)) for oid in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [oid for oid, result in results.items() if result["ok"]]
    assert len(winners) == 1, results
    loser = (set(results) - set(winners)).pop()
    expected = f"Card TC-000002 is already taken by order {winners[0]}; choose other cards."
    assert results[loser]["error"] == expected
    with unit_of_work(services.sessions) as session:
        holders = dict(session.execute(select(Reservation.card_id, Reservation.order_id)).all())
    assert holders[2] == winners[0]
    assert loser not in holders.values()  # the loser reserved nothing, not even its free card


def _constraint(services):
    add_cards(services, 1)
    first, second = _open_orders(services, 2)
    with unit_of_work(services.sessions) as session:
        session.execute(insert(Reservation).values(card_id=1, order_id=first))
    with pytest.raises(IntegrityError):
        with unit_of_work(services.sessions) as session:
            session.execute(insert(Reservation).values(card_id=1, order_id=second))


def test_reservation_race(services):
    _race(services)


def test_database_constraint(services):
    _constraint(services)
