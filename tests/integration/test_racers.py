"""Operators racing for the same cards from separate processes never share a card.

Two, four and eight operators, each a process of its own with its own engine and sessions on the
same database (as separate web servers are), stage overlapping selections at the same moment,
some by ticking card ids and some by "select all matching", then reserve at the same moment.
Every card ends in at most one order; each loser reads which card was taken, and by whom, and
keeps nothing; no operator ever sees a database error. Runs on SQLite and PostgreSQL
(tests/integration/conftest.py).

The operator processes are started once for the module (spawning eight Pythons per race would
be most of the run) and build a new engine for every race.
"""

from __future__ import annotations

import multiprocessing
import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from engine.db import make_engine, make_sessions, unit_of_work
from engine.domain_audit import wire_domain_audit
from tasks import orders
from tasks.errors import CardflowError
from tasks.queries import SearchFilter
from tasks.store import Card, OrderCard, Reservation, Selection

CARDS = 30
SIZES = (2, 4, 8)
TAKEN = re.compile(r"Card (TC-\d{6}) is already taken by order (\d+); choose other cards\.")
RACED = re.compile(r"Another order was reserving the same cards \((TC-\d{6}(?:, TC-\d{6})*)(?: and more)?\) "
                   r"at the same moment; press Issue again\.")
# What an operator must never read: the database's own words.
RAW = re.compile(r"sql|insert|select |psycopg|sqlite|deadlock|constraint|violat|\[parameters", re.I)


def _operator(inbox, results, barriers) -> None:
    """One operator's process: per race, stage the selection, then reserve it, each step when
    every operator of the race is ready for it."""
    while (job := inbox.get()) is not None:
        url, oid, ticked, match, size = job
        results.put(_race(url, oid, ticked, match, barriers[size]))


def _race(url: str, oid: int, ticked: list[int] | None, match: SearchFilter | None, barrier) -> dict:
    engine = make_engine(url)
    sessions = make_sessions(engine)
    wire_domain_audit(sessions)
    outcome = {"order": oid}
    try:
        barrier.wait(timeout=60)
        try:
            with unit_of_work(sessions) as session:
                outcome["staged"] = orders.stage_selection(session, oid, card_ids=ticked, match=match)
        except CardflowError as error:
            outcome["staged"] = str(error)
        barrier.wait(timeout=60)
        with unit_of_work(sessions) as session:
            outcome["reserve"] = orders.reserve(session, oid)
    except Exception as error:  # whatever would reach the operator is the finding
        outcome["crash"] = f"{type(error).__name__}: {error}"
    finally:
        engine.dispose()
    return outcome


class Operators:
    """Operator processes (spawned, so nothing of the parent's connections is shared)."""

    def __init__(self, count: int) -> None:
        context = multiprocessing.get_context("spawn")
        # Barriers can only reach a process when it starts, so there is one per race size.
        self.barriers = {size: context.Barrier(size) for size in SIZES}
        self.inboxes = [context.Queue() for _ in range(count)]
        self.results = context.Queue()
        self.processes = [context.Process(target=_operator, name=f"operator-{n}", daemon=True,
                                          args=(inbox, self.results, self.barriers))
                          for n, inbox in enumerate(self.inboxes)]
        for process in self.processes:
            process.start()

    def race(self, url: str, picks: dict[int, tuple]) -> dict[int, dict]:
        """Each order's operator stages its pick and reserves; order id -> what they got."""
        for inbox, (oid, (ticked, match)) in zip(self.inboxes, picks.items(), strict=False):
            inbox.put((url, oid, ticked, match, len(picks)))
        outcomes = {}
        for _ in picks:
            outcome = self.results.get(timeout=120)
            outcomes[outcome.pop("order")] = outcome
        return outcomes

    def close(self) -> None:
        for inbox in self.inboxes:
            inbox.put(None)
        for process in self.processes:
            process.join(timeout=30)
            assert process.exitcode == 0, process


@pytest.fixture(scope="module")
def operators() -> Iterator[Operators]:
    team = Operators(max(SIZES))
    yield team
    team.close()


def _picks(order_ids: list[int], oldest_day) -> dict[int, tuple]:
    """Overlapping selections: even operators tick windows of ten cards, odd ones select all that
    match a search (everything, a number prefix, a request date range)."""
    searches = [SearchFilter(), SearchFilter("TC-00001"),
                SearchFilter(None, oldest_day, oldest_day + timedelta(days=20)), SearchFilter("TC-00002")]
    picks = {}
    for n, oid in enumerate(order_ids):
        if n % 2 == 0:
            first = (n * 7) % CARDS
            picks[oid] = ([1 + (first + k) % CARDS for k in range(10)], None)
        else:
            picks[oid] = (None, searches[(n // 2) % len(searches)])
    return picks


@pytest.mark.parametrize("size", SIZES)
def test_racing_operators_never_share_a_card(services, operators, size):
    from tests.integration.flow import add_cards, order_id, start  # the runtime: parent only

    add_cards(services, CARDS)
    with unit_of_work(services.sessions) as session:
        oldest_day = session.scalar(select(func.min(Card.requested_at))).date()
        numbers = {number: cid for cid, number in session.execute(select(Card.id, Card.number))}
    order_ids = [order_id(services, start(services, user=f"op{n}")[0]) for n in range(size)]
    outcomes = operators.race(services.settings.database_url, _picks(order_ids, oldest_day))

    crashed = {oid: outcome["crash"] for oid, outcome in outcomes.items() if "crash" in outcome}
    assert not crashed, crashed
    for oid, outcome in outcomes.items():
        assert isinstance(outcome["staged"], int) and outcome["staged"] > 0, (oid, outcome)
    winners = {oid for oid, outcome in outcomes.items() if outcome["reserve"]["ok"]}
    losers = set(outcomes) - winners
    assert winners, outcomes
    assert losers, f"the selections overlap, so someone must lose: {outcomes}"

    with unit_of_work(services.sessions) as session:
        reserved = dict(session.execute(select(Reservation.card_id, Reservation.order_id)).all())
        listed = session.execute(select(OrderCard.card_id, OrderCard.order_id)).all()
        staged_left = session.scalar(select(func.count()).select_from(Selection))
    # At most one order per card, and the order that reserved a card is the one that lists it.
    assert len({card for card, _ in listed}) == len(listed), sorted(listed)
    assert dict(listed) == reserved
    assert staged_left == 0  # winners turned theirs into reservations, losers dropped theirs

    for oid in winners:
        held = sum(1 for holder in reserved.values() if holder == oid)
        assert held == outcomes[oid]["staged"] == outcomes[oid]["reserve"]["count"], (oid, outcomes)
    for oid in losers:
        result = outcomes[oid]["reserve"]
        assert result["count"] == 0 and oid not in reserved.values(), (oid, result)
        error = result["error"]
        assert not RAW.search(error.replace("press Issue again", "")), error
        taken, raced = TAKEN.fullmatch(error), RACED.fullmatch(error)
        assert taken or raced, error
        if taken:
            holder = int(taken.group(2))
            assert holder in winners and reserved.get(numbers[taken.group(1)]) == holder, error
