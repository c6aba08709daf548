"""Bench: one order of N cards from Search to Complete order with the virtual station.

Floors: 1,000 cards under 15 s on SQLite (issue 9; issue 2 asked 30 s); stored workflow state
under 50 KB whatever N.
Run from the project root: .venv/bin/python -m bench.issue_order [--cards 1000] [--no-encode]
[--database-url URL] (a PostgreSQL URL runs in a private schema of that database).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from engine.db import unit_of_work
from tasks import orders
from tasks.queries import SearchFilter
from tests.conftest import make_settings, private_schema, start_services
from tests.integration.costs import print_only
from tests.integration.flow import add_cards, order_id, settle, submit


def main() -> None:
    """Time each phase of one order and print the workflow state size."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cards", type=int, default=1000)
    parser.add_argument("--no-encode", action="store_true", help="print only (encode_card = False)")
    parser.add_argument("--database-url", help="default: SQLite in a temporary folder")
    args = parser.parse_args()
    # A card takes milliseconds; the wait for production scales with the order, with room to spare.
    wait = 120 + args.cards * 0.2
    with tempfile.TemporaryDirectory() as folder, ExitStack() as stack:
        url = stack.enter_context(private_schema(args.database_url, "bench")) if args.database_url else None
        settings = make_settings(Path(folder) / "instance", url)
        services = start_services(settings)
        add_cards(services, args.cards)
        if args.no_encode:
            print_only(services)
        timings = {}
        began = time.perf_counter()
        instance_id = services.runtime.start("TempCardsBoProcIssueMultiple", "bench")
        task = settle(services, instance_id)
        with unit_of_work(services.sessions) as session:
            count = orders.stage_selection(session, order_id(services, instance_id), match=SearchFilter())
        task = submit(services, instance_id, task, {"action": "issue", "selection": {"selected": count}},
                      timeout=wait)
        timings["search, select all, reserve"] = time.perf_counter() - began
        mark = time.perf_counter()
        task = submit(services, instance_id, task, {"action": "next"}, timeout=wait)
        timings["produce"] = time.perf_counter() - mark
        size = services.runtime.state_size(instance_id)
        mark = time.perf_counter()
        submit(services, instance_id, task, {"action": "complete", "confirm_ok": True}, timeout=wait)
        timings["complete order"] = time.perf_counter() - mark
        total = time.perf_counter() - began
        services.close()
    database = "PostgreSQL" if args.database_url else "SQLite"
    print(f"order of {args.cards} cards on {database}, "
          f"encoding {'off' if args.no_encode else 'on (default options)'}")
    for phase, seconds in timings.items():
        print(f"  {phase:30s} {seconds:8.2f} s")
    print(f"  {'total (Search to Complete)':30s} {total:8.2f} s   {1000 * total / args.cards:.1f} ms a card; "
          "floor: 15 s for 1,000 cards on SQLite")
    print(f"  workflow state after production  {size / 1024:8.1f} KB  floor: 50 KB")


if __name__ == "__main__":
    main()
