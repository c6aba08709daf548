"""Bench: what the engine and the database cost a card, against a bare SQL loop doing the same.

"engine": one order of N cards from Next to Review production through the real process, the
real production code (claim, fencing token, outcome, audit chain) and the in-process station,
with printing and encoding off (a station whose printer writes nothing), divided by N.
"bare SQL": the same state changes of the same N cards written by hand with the driver: the
claim and its attempt and audit entry in one commit, the outcome (card row, card event, attempt,
two audit entries chained by hash, batch counter, station counter) in a second commit.

Floors (issue 9): engine within 2x of bare SQL at 1,000 and 10,000 cards on both databases, and
flat (10,000 within 10% of 1,000 a card).
Run from the project root: .venv/bin/python -m bench.card_cost [--cards 1000 10000]
[--databases sqlite postgresql] (PostgreSQL: CARDFLOW_BENCH_POSTGRES_URL, default the local
test database, in a private schema).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from engine import bootstrap
from engine.db import make_engine, make_sessions, unit_of_work
from tasks.demo import add_requested_cards
from tests.conftest import make_settings, private_schema
from tests.integration.costs import StatementCounter, blank_station_services, print_only
from tests.integration.flow import add_cards, order_id, settle, start
from tests.integration.workers import complete, issue

POSTGRES_URL = os.environ.get("CARDFLOW_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def engine_run(url: str, folder: Path, cards: int) -> tuple[float, float]:
    """Seconds a card and statements a card, Next to Review production."""
    services = blank_station_services(make_settings(folder / "instance", url))
    try:
        print_only(services)
        add_cards(services, cards)
        instance_id, task = start(services, user="bench")
        task = issue(services, instance_id, task, cards)
        counter = StatementCounter(services.db)
        counter.on = True
        began = time.perf_counter()
        complete(services, instance_id, task, {"action": "next"})
        task = settle(services, instance_id, timeout=120 + cards * 0.1)
        seconds = time.perf_counter() - began
        counter.on = False
        assert task.bpmn_id == "Activity_Review", task.bpmn_id
        order_id(services, instance_id)
    finally:
        services.close()
    return seconds / cards, counter.count / cards


def bare_run(url: str, folder: Path, cards: int) -> tuple[float, float]:
    """Seconds a card and statements a card of the same state changes written by hand."""
    settings = make_settings(folder / "bare", url)
    bootstrap.init_database(settings)
    database = make_engine(settings.database_url)  # no sweeper, no runner: nothing else writes
    try:
        with unit_of_work(make_sessions(database)) as session:
            add_requested_cards(session, cards, "Bench Organisation")
            session.execute(text(
                "INSERT INTO orders (id, instance_id, process_id, process_version, options_name, "
                "options_version, options, status, created_by, created_at, cards_outstanding, station_pool) "
                "VALUES (1, 'bare', 'p', 1, 'o', 1, '{}', 'open', 'bench', :now, :n, 'default')"),
                {"now": datetime.now(UTC), "n": cards})
            session.execute(text("INSERT INTO order_cards (order_id, card_id, status, repeat_requested, "
                                 "claim_token) SELECT 1, id, 'pending', false, 0 FROM cards"))
            session.execute(text("INSERT INTO stations (name, pool, paused, cards_produced, cards_failed) "
                                 "VALUES ('bare', 'default', false, 0, 0)"))
        counter = StatementCounter(database)
        with database.connect() as connection:
            counter.on = True
            began = time.perf_counter()
            for card_id in range(1, cards + 1):
                _bare_card(connection, card_id)
            seconds = time.perf_counter() - began
            counter.on = False
    finally:
        database.dispose()
    return seconds / cards, counter.count / cards


def _bare_card(connection, card_id: int) -> None:
    """One card: claim + attempt + its audit entry; commit; outcome + events + counters; commit."""
    now = datetime.now(UTC)
    number = f"TC-{card_id:06d}"
    with connection.begin():
        connection.execute(text("SELECT paused FROM stations WHERE name = 'bare'"))
        connection.execute(text(
            "UPDATE order_cards SET status = 'claimed', claim_token = claim_token + 1, claimed_by = 'bare', "
            "claimed_until = :until WHERE order_id = 1 AND card_id = :card AND status = 'pending'"),
            {"until": now, "card": card_id})
        connection.execute(text(
            "INSERT INTO production_attempts (order_id, card_id, attempt, outcome, files, started_at, "
            "station) VALUES (1, :card, 1, 'started', '[]', :now, 'bare')"), {"card": card_id, "now": now})
        _bare_audit(connection, [("attempt started", number, {"attempt": 1})])
    with connection.begin():
        connection.execute(text(
            "UPDATE order_cards SET status = 'produced', claimed_by = NULL, claimed_until = NULL "
            "WHERE order_id = 1 AND card_id = :card AND claim_token = 1 AND status = 'claimed'"),
            {"card": card_id})
        connection.execute(text(
            "UPDATE production_attempts SET outcome = 'produced', physical_serial = 'PRN', files = '[]', "
            "finished_at = :now WHERE order_id = 1 AND card_id = :card AND attempt = 1"),
            {"now": now, "card": card_id})
        connection.execute(text("UPDATE cards SET state = 'unassigned', valid_until = :now, "
                                "updated_at = :now WHERE id = :card"), {"now": now, "card": card_id})
        connection.execute(text(
            "INSERT INTO card_events (card_id, at, actor, order_id, process_id, process_version, "
            "from_state, to_state, reason) "
            "VALUES (:card, :now, 'bench', 1, 'p', 1, 'requested', 'unassigned', 'Produced')"),
            {"card": card_id, "now": now})
        _bare_audit(connection, [("card state changed", number, {"from": "requested", "to": "unassigned"}),
                                 ("attempt produced", number, {"attempt": 1, "outcome": "produced"})])
        connection.execute(text("UPDATE orders SET cards_outstanding = cards_outstanding - 1 "
                                "WHERE id = 1 RETURNING cards_outstanding"))
        connection.execute(text("UPDATE stations SET cards_produced = cards_produced + 1 "
                                "WHERE name = 'bare'"))


def _bare_audit(connection, entries: list[tuple[str, str, dict]]) -> None:
    """Append entries to the audit chain: read its end, hash each entry onto it, insert."""
    last = connection.execute(text("SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1")).first()
    last_id, prev = (last[0], last[1]) if last else (0, "0" * 64)
    at = datetime.now(UTC)
    for offset, (action, card, detail) in enumerate(entries, start=1):
        content = json.dumps([last_id + offset, at.isoformat(), "bench", action, "bare", 1, card, detail],
                             sort_keys=True, separators=(",", ":")).encode()
        digest = hashlib.sha256(prev.encode() + b"\0" + content).hexdigest()
        connection.execute(text(
            "INSERT INTO audit_events (id, at, actor, action, instance_id, order_id, card, detail, "
            "prev_hash, hash) VALUES (:id, :at, 'bench', :action, 'bare', 1, :card, :detail, :prev, :hash)"),
            {"id": last_id + offset, "at": at, "action": action, "card": card, "detail": json.dumps(detail),
             "prev": prev, "hash": digest})
        prev = digest


def main() -> None:
    """Print one table: database x cards, engine and bare ms a card, ratio, statements a card."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cards", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--databases", nargs="+", default=["sqlite", "postgresql"],
                        choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    rows = []
    for database in args.databases:
        for cards in args.cards:
            with tempfile.TemporaryDirectory() as folder, ExitStack() as stack:
                urls = [None, None] if database == "sqlite" else [
                    stack.enter_context(private_schema(POSTGRES_URL, "bench")) for _ in range(2)]
                bare, bare_statements = bare_run(urls[0], Path(folder), cards)
                engine, engine_statements = engine_run(urls[1], Path(folder), cards)
            rows.append((database, cards, engine, bare, engine_statements, bare_statements))
    print(f"engine + database a card (printing and encoding off), {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'database':10s} {'cards':>6s} {'engine ms':>9s} {'bare ms':>8s} {'ratio':>6s} "
          f"{'statements':>10s} {'bare':>5s}")
    first: dict[str, float] = {}
    for database, cards, engine, bare, engine_statements, bare_statements in rows:
        first.setdefault(database, engine)
        print(f"{database:10s} {cards:6d} {engine * 1000:9.2f} {bare * 1000:8.2f} {engine / bare:5.2f}x "
              f"{engine_statements:10.1f} {bare_statements:5.1f}   "
              f"a card vs the first size: {engine / first[database]:.2f}x")
    print("floors: ratio under 2x at every size; a card at 10,000 within 10% of a card at 1,000")


if __name__ == "__main__":
    main()
