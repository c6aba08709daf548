"""Bench: the first page of Search among N requested cards (floor: under 200 ms for 100,000).

Run from the project root: .venv/bin/python -m bench.search [--cards 100000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from engine import bootstrap
from engine.db import unit_of_work
from tasks.demo import add_requested_cards
from tasks.queries import search_requested
from tests.conftest import make_settings


def main() -> None:
    """Time the card picker's queries: unfiltered, by number prefix, by date range."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cards", type=int, default=100_000)
    parser.add_argument("--database-url", help="default: SQLite in a temporary folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        settings = make_settings(Path(folder) / "instance", args.database_url)
        bootstrap.init_database(settings)
        services = bootstrap.build_services(settings)
        began = time.perf_counter()
        with unit_of_work(services.sessions) as session:
            add_requested_cards(session, args.cards, "Bench Organisation")
        print(f"{args.cards} requested cards created in {time.perf_counter() - began:.1f} s")
        today = date.today()
        cases = {
            "first page, no filter": {},
            "last page, no filter": {"page": args.cards // 50},
            "number prefix TC-0500": {"number": "TC-0500"},
            "requested in the last 3 days": {"requested_from": today - timedelta(days=3)},
        }
        for name, query in cases.items():
            samples = []
            for _ in range(7):
                with unit_of_work(services.sessions) as session:
                    start = time.perf_counter()
                    page = search_requested(session, **query)
                    samples.append((time.perf_counter() - start) * 1000)
            print(f"  {name:32s} median {statistics.median(samples):7.1f} ms  max {max(samples):7.1f} ms"
                  f"  ({page.total} matching)")
        services.close()


if __name__ == "__main__":
    main()
