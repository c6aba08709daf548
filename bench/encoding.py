"""Per-card encoding time through pcscd and the virtual card, split into APDU, CA signing and DB time.

Run: ``.venv/bin/python bench/encoding.py [--cards 3]`` (needs pcscd and vsmartcard-vpcd; starts
them like the tests do and stops them afterwards).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

import tasks.cardsdk.records  # noqa: F401  (registers the SDK tables)
from tasks.cardsdk.ca import LocalCA
from tasks.cardsdk.custody import Custody, load_or_create_key
from tasks.cardsdk.encoder import build_encoder
from tasks.cardsdk.job import CardJob
from tasks.cardsdk.piv.testbed import PcscTestbed
from tasks.store import Base

CERTIFICATES = ("PIV Authentication", "Digital Signature", "Key Management", "Card Authentication")


class TimedSessions:
    """A sessionmaker stand-in that adds up the time spent inside session blocks."""

    def __init__(self, factory: sessionmaker) -> None:
        """Wrap ``factory``."""
        self.factory = factory
        self.seconds = 0.0

    @contextmanager
    def _timed(self, opener):
        """Time one session block."""
        started = time.perf_counter()
        try:
            with opener() as session:
                yield session
        finally:
            self.seconds += time.perf_counter() - started

    def begin(self):
        """Like ``sessionmaker.begin``."""
        return self._timed(self.factory.begin)

    def __call__(self):
        """Like calling a ``sessionmaker``."""
        return self._timed(self.factory)


def bench(cards: int) -> list[tuple]:
    """Encode ``cards`` cards with 1 and with 4 P-256 certificates; one row of averages per case."""
    rows = []
    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        engine = create_engine(f"sqlite:///{folder / 'bench.db'}")
        Base.metadata.create_all(engine)
        sessions = TimedSessions(sessionmaker(engine, expire_on_commit=False))
        LocalCA.init(folder / "ca", "bench")
        ca = LocalCA(folder / "ca", "bench", sessions)
        custody = Custody(sessions, load_or_create_key(folder))
        encoder = build_encoder("pcsc", "Virtual PCD*", "piv-3des-p256", ca, custody)
        with PcscTestbed(folder / "testbed") as testbed:
            card_id = 0
            for count in (1, 4):
                totals = {"total": 0.0, "apdu": 0.0, "ca": 0.0, "db": 0.0}
                for _ in range(cards):
                    card_id += 1
                    testbed.new_card()
                    job = CardJob(
                        card_id,
                        f"B-{card_id:06d}",
                        "Bench",
                        date.today() + timedelta(days=14),
                        f"bench/{card_id}",
                        folder,
                        certificates=CERTIFICATES[:count],
                    )
                    sessions.seconds = 0.0
                    started = time.perf_counter()
                    encoder.encode(job)
                    totals["total"] += time.perf_counter() - started
                    ca_db = sessions.seconds - encoder.timings["custody"]
                    totals["apdu"] += encoder.timings["apdu"]
                    totals["ca"] += encoder.timings["ca"] - ca_db
                    totals["db"] += sessions.seconds
                rows.append((count, cards, *(1000 * totals[key] / cards for key in totals)))
        engine.dispose()
    return rows


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=3, help="cards per case")
    rows = bench(parser.parse_args().cards)
    widths = (5, 5, 9, 8, 10, 6, 8)
    header = ("certs", "cards", "total ms", "APDU ms", "CA sign ms", "DB ms", "other ms")
    print(" ".join(f"{name:>{width}}" for name, width in zip(header, widths, strict=True)))
    for count, cards, total, apdu, ca, db in rows:
        values = (count, cards, total, apdu, ca, db, total - apdu - ca - db)
        print(" ".join(f"{value:>{width}.1f}" for value, width in zip(values, widths, strict=True)))


if __name__ == "__main__":
    main()
