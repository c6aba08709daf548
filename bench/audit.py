"""Bench: the audit trail at scale: filtered pages, verify, export memory, the cost of one entry.

Floors (issue "Auditors prove what happened"), at 1,000,000 entries: a filtered page p95 under
50 ms; verify of the whole chain under 30 s; export memory the same for 100,000 and 1,000,000
entries; writing one entry alongside a card state change adds under 1 ms.
Run from the project root: .venv/bin/python -m bench.audit [--entries 1000000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import base64
import random
import statistics
import tempfile
import time
import tracemalloc
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Engine, insert, text, update

from engine import bootstrap
from engine.audit_chain import GENESIS, entry_hash
from engine.audit_export import AuditFilters, filtered_entries, stream_csv
from engine.audit_signing import HeadSigner, head_payload
from engine.audit_verify import verify_chain
from engine.db import make_engine, make_sessions, unit_of_work
from engine.store import AuditEvent, AuditHead
from tasks.demo import add_requested_cards
from tasks.store import Card
from tests.conftest import make_settings

ACTIONS = ("card state changed", "attempt started", "attempt produced", "certificate issued",
           "order completed", "instance started", "login", "deploy")
ACTORS = [f"operator{n}" for n in range(40)] + ["station", "ca", "runner", "admin"]
START = datetime(2025, 11, 24, tzinfo=UTC)
STEP = timedelta(seconds=30)  # a million entries over about a year
PER_ORDER = 100  # entries per order; a signed head at each order's end
CHUNK = 20_000


@dataclass
class Entry:
    """An entry as the chain hashes it, without the ORM (the fill bypasses the listener)."""

    id: int
    at: datetime
    actor: str
    action: str
    instance_id: str | None
    order_id: int | None
    card: str | None
    detail: dict


def fill(engine: Engine, entries: int) -> Ed25519PublicKey:
    """Bulk insert ``entries`` precomputed chain rows and a signed head per order; returns the
    public key of the heads."""
    rng, signer = random.Random(7), HeadSigner(Ed25519PrivateKey.generate())
    prev = GENESIS
    for first in range(1, entries + 1, CHUNK):
        rows, heads = [], []
        for entry_id in range(first, min(first + CHUNK, entries + 1)):
            order = (entry_id - 1) // PER_ORDER + 1
            entry = Entry(entry_id, START + STEP * entry_id, rng.choice(ACTORS), rng.choice(ACTIONS),
                          f"{order:036d}", order, f"TC-{rng.randrange(1, 100_001):06d}",
                          {"from": "reserved", "to": "issued", "reason": "bench"})
            entry_id_hash = entry_hash(prev, entry)
            rows.append({**vars(entry), "prev_hash": prev, "hash": entry_id_hash})
            prev = entry_id_hash
            if entry_id % PER_ORDER == 0:
                signed_at = entry.at + timedelta(seconds=1)
                signature = signer.private_key.sign(head_payload(entry_id, prev, signed_at, "order ended"))
                heads.append({"entry_id": entry_id, "hash": prev, "signed_at": signed_at,
                              "reason": "order ended", "key_id": signer.key_id,
                              "signature": base64.b64encode(signature).decode()})
        with engine.begin() as connection:
            connection.execute(insert(AuditEvent.__table__), rows)
            if heads:
                connection.execute(insert(AuditHead.__table__), heads)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE audit_events"))  # what autovacuum does after a load
    return signer.private_key.public_key()


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p95 of ``samples`` (milliseconds)."""
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.95) - 1]


def page_cases(entries: int, rng: random.Random) -> dict:
    """Each kind of auditor page: a function giving the filters and keyset position of one query."""
    def card() -> str:
        """A random card number."""
        return f"TC-{rng.randrange(1, 100_001):06d}"

    def period(days: int) -> dict:
        """A random stretch of ``days`` days within the trail."""
        since = START + STEP * rng.randrange(1, entries)
        return {"since": since, "until": since + timedelta(days=days)}

    def deep() -> int:
        """A keyset position past the first tenth of the trail."""
        return rng.randrange(entries // 10, entries)

    return {
        "by card": lambda: (AuditFilters(card=card()), None),
        "by order": lambda: (AuditFilters(order_id=rng.randrange(1, entries // PER_ORDER + 1)), None),
        "by user": lambda: (AuditFilters(actor=rng.choice(ACTORS)), None),
        "by user, deep page": lambda: (AuditFilters(actor=rng.choice(ACTORS)), deep()),
        "by action": lambda: (AuditFilters(action=rng.choice(ACTIONS)), None),
        "by time range (a day)": lambda: (AuditFilters(**period(1)), None),
        "by time range (a month)": lambda: (AuditFilters(**period(30)), None),
        "by time, since a date": lambda: (AuditFilters(since=period(1)["since"]), deep()),
        "by user within a month": lambda: (AuditFilters(actor=rng.choice(ACTORS), **period(30)), None),
        "by action within a month": lambda: (AuditFilters(action=rng.choice(ACTIONS), **period(30)), None),
        "no filter, first page": lambda: (AuditFilters(), None),
        "no filter, deep page": lambda: (AuditFilters(), deep()),
        "card and action": lambda: (AuditFilters(card=card(), action=rng.choice(ACTIONS)), None),
    }


def time_pages(sessions, entries: int, queries: int) -> list[tuple[str, str, str, bool]]:
    """p50/p95 of each page kind over ``queries`` queries (session and transaction included)."""
    rng, results = random.Random(11), []
    for name, case in page_cases(entries, rng).items():
        samples = []
        for _ in range(queries):
            filters, before = case()
            began = time.perf_counter()
            with unit_of_work(sessions) as session:
                filtered_entries(session, filters, before_id=before)
            samples.append((time.perf_counter() - began) * 1000)
        p50, p95 = percentiles(samples)
        results.append((f"page {name}", f"p50 {p50:6.1f} ms  p95 {p95:6.1f} ms", "p95 < 50 ms", p95 < 50))
    return results


def export_peak(sessions, filters: AuditFilters) -> tuple[int, float, int]:
    """Stream a CSV export to nowhere: (lines, seconds, tracemalloc peak bytes)."""
    tracemalloc.start()
    began, lines = time.perf_counter(), 0
    for _line in stream_csv(sessions, filters):
        lines += 1
    seconds = time.perf_counter() - began
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return lines - 1, seconds, peak


def write_cost(sessions, rounds: int = 400) -> tuple[float, float]:
    """Median ms of a card state change alone, and with one audit entry in the same transaction."""
    with unit_of_work(sessions) as session:
        add_requested_cards(session, 1, "Bench Organisation")
    alone, audited = [], []
    for n in range(rounds):
        for samples, with_entry in ((alone, False), (audited, True)):
            began = time.perf_counter()
            with unit_of_work(sessions) as session:
                session.execute(update(Card).where(Card.number == "TC-000001")
                                .values(state=("issued", "requested")[n % 2]))
                if with_entry:
                    session.add(AuditEvent(actor="operator1", action="card state changed", card="TC-000001",
                                           order_id=1, detail={"to": ("issued", "requested")[n % 2]}))
            samples.append((time.perf_counter() - began) * 1000)
    return statistics.median(alone), statistics.median(audited)


def main() -> None:
    """Fill the trail, then measure and print each figure against its floor."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200, help="queries per page kind")
    parser.add_argument("--database-url", help="an empty database; default: SQLite in a temporary folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        settings = make_settings(Path(folder) / "instance", args.database_url)
        bootstrap.init_database(settings)
        engine = make_engine(settings.database_url)
        sessions = make_sessions(engine)
        began = time.perf_counter()
        public_key = fill(engine, args.entries)
        print(f"{engine.dialect.name}: {args.entries:,} entries and {args.entries // PER_ORDER:,} signed "
              f"heads written in {time.perf_counter() - began:.1f} s")
        rows = time_pages(sessions, args.entries, args.queries)
        began = time.perf_counter()
        report = verify_chain(sessions, public_key)
        seconds = time.perf_counter() - began
        rows.append(("verify the whole chain", f"{seconds:6.1f} s ({report.entries:,} entries, "
                     f"{report.heads:,} heads)", "< 30 s", seconds < 30 and report.ok))
        tenth = AuditFilters(until=START + STEP * (args.entries // 10 + 1))
        small, whole = export_peak(sessions, tenth), export_peak(sessions, AuditFilters())
        for lines, spent, peak in (small, whole):
            rows.append((f"export CSV of {lines:,} entries", f"{spent:6.1f} s, peak {peak / 2**20:5.2f} MiB",
                         "constant", whole[2] < 2 * small[2] + 2**20))
        alone, audited = write_cost(sessions)
        added = f"{alone:5.2f} -> {audited:5.2f} ms (+{audited - alone:4.2f})"
        rows.append(("card state change + 1 entry", added, "+ < 1 ms", audited - alone < 1))
        engine.dispose()
    print(f"{'measure':34s} {'result':42s} {'floor':12s}")
    for name, result, floor, ok in rows:
        print(f"{name:34s} {result:42s} {floor:12s} {'ok' if ok else 'MISSED'}")


if __name__ == "__main__":
    main()
