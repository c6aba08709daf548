"""Two operators can never issue the same card: the database refuses the second reservation,
on SQLite and on PostgreSQL (tests/integration/conftest.py runs each test on both), even when
the application's own checks are raced past."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import event, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError

from engine.db import unit_of_work
from tasks import orders
from tasks.errors import SelectionError
from tasks.queries import SearchFilter
from tasks.store import Card, OrderCard, Reservation, Selection
from tests.conftest import make_settings, start_services
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


def test_staging_counts_the_cards(services):
    """PostgreSQL reports -1 as the row count of an INSERT ... SELECT: the count must not be it."""
    add_cards(services, 12)
    first, second = _open_orders(services, 2)
    with unit_of_work(services.sessions) as session:
        assert orders.stage_selection(session, first, card_ids=[3, 5, 5, 7]) == 3
        assert orders.stage_selection(session, first, card_ids=[3, 5]) == 2
        assert orders.stage_selection(session, second, match=SearchFilter("TC-00001")) == 3
        assert orders.stage_selection(session, second, match=SearchFilter()) == 12
    with unit_of_work(services.sessions) as session:
        assert orders.reserve(session, first) == {"ok": True, "count": 2, "error": None}
    with unit_of_work(services.sessions) as session:
        # The cards the first order holds are no longer among "all matching".
        assert orders.stage_selection(session, second, match=SearchFilter()) == 10
        with pytest.raises(SelectionError, match="No available requested card matches"):
            orders.stage_selection(session, second, match=SearchFilter("TC-000003"))


class _Deadlock(Exception):
    """What psycopg raises for a deadlock PostgreSQL broke by aborting us."""

    sqlstate = "40P01"


def _deadlock_on_reservations(services, times: int) -> list[str]:
    """Make the next ``times`` inserts into reservations fail as a deadlock victim does."""
    seen = []

    @event.listens_for(services.db, "before_cursor_execute")
    def lose(_conn, _cursor, statement, parameters, _context, _many):
        if statement.startswith("INSERT INTO reservations"):
            seen.append(statement)
            if len(seen) <= times:
                raise OperationalError(statement, parameters, _Deadlock("deadlock detected"))

    return seen


def test_a_lost_deadlock_is_tried_again(services):
    add_cards(services, 3)
    (oid,) = _open_orders(services, 1)
    with unit_of_work(services.sessions) as session:
        orders.stage_selection(session, oid, card_ids=[1, 2])
    seen = _deadlock_on_reservations(services, times=1)
    with unit_of_work(services.sessions) as session:
        assert orders.reserve(session, oid) == {"ok": True, "count": 2, "error": None}
    assert len(seen) == 2
    with unit_of_work(services.sessions) as session:
        assert sorted(session.scalars(select(Reservation.card_id))) == [1, 2]
        assert sorted(session.scalars(select(OrderCard.card_id))) == [1, 2]


def test_a_deadlock_lost_every_time_asks_to_press_issue_again(services):
    add_cards(services, 3)
    (oid,) = _open_orders(services, 1)
    with unit_of_work(services.sessions) as session:
        orders.stage_selection(session, oid, card_ids=[1, 2])
    seen = _deadlock_on_reservations(services, times=99)
    with unit_of_work(services.sessions) as session:
        result = orders.reserve(session, oid)
    assert result == {"ok": False, "count": 0, "error": (
        "Another order was reserving the same cards (TC-000001, TC-000002) at the same moment; "
        "press Issue again.")}
    assert len(seen) == 3
    with unit_of_work(services.sessions) as session:
        for table in (Reservation, OrderCard, Selection):
            assert session.scalar(select(func.count()).select_from(table)) == 0, table


@pytest.fixture
def pg_services(postgres_url, tmp_path):
    """The wired product on PostgreSQL only: what is tested there cannot happen on SQLite."""
    services = start_services(make_settings(tmp_path / "instance", postgres_url))
    yield services
    services.close()


def _wait_for_lock(services, pid: int) -> None:
    """Wait until the backend ``pid`` waits for a lock another transaction holds."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with services.db.connect() as connection:
            waiting = connection.scalar(text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"),
                                        {"pid": pid})
        if waiting == "Lock":
            return
        time.sleep(0.02)
    raise AssertionError(f"backend {pid} never waited for a lock")


@pytest.mark.postgres
def test_tick_against_select_all_waits_instead_of_deadlocking(pg_services):
    """A ticked order and a "select all matching" order reserve the same cards at once.

    The operator's search lists the oldest request first, so "all matching" used to be inserted
    in that order and the ticks in card order: each held a card the other wanted next. A third
    order holding one card (uncommitted) makes both meet in the middle every time.
    """
    services = pg_services
    add_cards(services, 30)
    with unit_of_work(services.sessions) as session:
        oldest = session.scalar(select(func.min(Card.requested_at)))
        session.execute(update(Card).where(Card.id == 20).values(requested_at=oldest - timedelta(days=1)))
    ticking, matching, blocking = _open_orders(services, 3)
    with unit_of_work(services.sessions) as session:
        orders.stage_selection(session, ticking, card_ids=list(range(1, 31)))
        orders.stage_selection(session, matching, match=SearchFilter())
    results, pids = {}, {}

    def reserve(oid):
        try:
            with unit_of_work(services.sessions) as session:
                pids[oid] = session.scalar(text("SELECT pg_backend_pid()"))
                results[oid] = orders.reserve(session, oid)
        except Exception as error:  # whatever reached the caller is the finding
            results[oid] = error

    blocker = services.db.connect()
    transaction = blocker.begin()
    blocker.execute(insert(Reservation).values(card_id=19, order_id=blocking))
    threads = {}
    for oid in (ticking, matching):
        threads[oid] = threading.Thread(target=reserve, args=(oid,))
        threads[oid].start()
        while oid not in pids and threads[oid].is_alive():
            time.sleep(0.01)
        _wait_for_lock(services, pids[oid])
    transaction.rollback()
    blocker.close()
    for thread in threads.values():
        thread.join(timeout=30)
    assert results[ticking] == {"ok": True, "count": 30, "error": None}, results
    assert results[matching] == {"ok": False, "count": 0, "error": (
        f"Card TC-000001 is already taken by order {ticking}; choose other cards.")}, results
    with unit_of_work(services.sessions) as session:
        assert set(session.scalars(select(Reservation.order_id))) == {ticking}
        assert set(session.scalars(select(OrderCard.order_id))) == {ticking}
        assert session.scalar(select(func.count()).select_from(Selection)) == 0
