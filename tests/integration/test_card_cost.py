"""What a card costs the database does not grow with the order: the statements a card sends are
the same in a small and in a larger order, on both databases, and stay near a bare SQL loop's.

Times are the benchmark's business (bench.card_cost); statement counts are exact, so this test
catches an N+1 query or a per-card rescan of the order without timing anything.
"""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from engine.db import unit_of_work
from engine.store import AuditEvent
from tasks import orders
from tests.integration.costs import StatementCounter, blank_station_services, print_only
from tests.integration.flow import add_cards, order_id, settle, start, submit
from tests.integration.workers import complete

# A bare SQL loop writing the same rows sends 16 a card on SQLite, its BEGIN and COMMIT included
# (bench.card_cost): the product sends no more.
MOST_STATEMENTS_A_CARD = 16


def produce(services, counter: StatementCounter, card_ids: list[int]) -> tuple[int, int]:
    """One order of ``card_ids``: statements sent from Next to Review, and audit entries written."""
    instance_id, task = start(services)
    with unit_of_work(services.sessions) as session:
        count = orders.stage_selection(session, order_id(services, instance_id), card_ids=card_ids)
    task = submit(services, instance_id, task, {"action": "issue", "selection": {"selected": count}})
    with unit_of_work(services.sessions) as session:
        entries_before = session.scalar(select(func.count()).select_from(AuditEvent))
    counter.count, counter.on = 0, True
    complete(services, instance_id, task, {"action": "next"})
    counter.waiting = threading.get_ident()
    task = settle(services, instance_id)
    counter.on, counter.waiting = False, None
    assert task.bpmn_id == "Activity_Review"
    with unit_of_work(services.sessions) as session:
        entries = session.scalar(select(func.count()).select_from(AuditEvent)) - entries_before
    return counter.count, entries


def test_a_card_costs_the_same_statements_in_a_small_and_a_larger_order(settings):
    services = blank_station_services(settings)
    try:
        services.sweeper.stop()  # its periodic reads are not the cards' cost
        print_only(services)
        add_cards(services, 50)
        counter = StatementCounter(services.db)
        small, small_entries = produce(services, counter, list(range(1, 11)))
        larger, larger_entries = produce(services, counter, list(range(11, 51)))
    finally:
        services.close()
    # 30 more cards cost 30 cards' statements: the order's own steps cost the same in both, and
    # a card costs no more in the larger order, where the order and the audit trail are longer.
    a_card = (larger - small) / 30
    assert a_card <= MOST_STATEMENTS_A_CARD, a_card
    assert small - 10 * a_card <= 100, small  # the order's engine steps, whatever its size
    # Every card still leaves its audit entries: attempt started, state changed, attempt produced.
    assert larger_entries - small_entries == 3 * 30, (small_entries, larger_entries)


def test_a_station_row_created_by_another_host_meanwhile_still_counts_the_card(services, monkeypatch):
    """The station's first card: its row did not exist when counted, and another host (or the
    heartbeat) created it before this outcome could: the card is counted, nothing fails."""
    from tasks import production
    from tasks.store import StationStatus

    name = services.production.station.name
    with unit_of_work(services.sessions) as session:
        session.add(StationStatus(name=name, pool="default", paused=False, cards_produced=5, cards_failed=0))
    real_count, calls = production._count, []

    def not_there_yet(*args):
        calls.append(args)
        return 0 if len(calls) == 1 else real_count(*args)

    monkeypatch.setattr(production, "_count", not_there_yet)
    with services.sessions.begin() as session:
        production._count_station(session, services.production, "produced", None)
    with unit_of_work(services.sessions) as session:
        assert session.get(StationStatus, name).cards_produced == 6
