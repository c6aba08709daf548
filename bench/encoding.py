"""Per-card encoding time through pcscd and the virtual card, split into APDU, CA signing, signed
objects and DB time; the same run also encodes every case as cards were before the signed CHUID
and Security Object (an unsigned CHUID, no Security Object), the baseline the ratio is taken to.

Everything is software here (the virtual card answers over vpcd), so the time per certificate is
the software time the issue's floor (100 ms a certificate) is about. Card Authentication comes
with every card: "1 cert" is Card Authentication alone, "4 certs" every slot.

Run: ``.venv/bin/python bench/encoding.py [--cards 3]`` (needs pcscd and vsmartcard-vpcd; starts
them like the tests do and stops them afterwards).
"""

from __future__ import annotations

import argparse
import fcntl
import tempfile
import time
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

import tasks.cardsdk.records  # noqa: F401  (registers the SDK tables)
from tasks.cardsdk import card_objects
from tasks.cardsdk.ca import LocalCA
from tasks.cardsdk.card_identity import CardIdentityIssuer
from tasks.cardsdk.custody import Custody, load_or_create_key
from tasks.cardsdk.encoder import Encoder, build_encoder
from tasks.cardsdk.job import CardJob
from tasks.cardsdk.piv import profiles
from tasks.cardsdk.piv.apdu import tlv
from tasks.cardsdk.piv.testbed import PcscTestbed
from tasks.store import Base

# Card Authentication is added to every card by the encoder.
CERTIFICATES = ("PIV Authentication", "Digital Signature", "Key Management")
PARTS = ("total", "apdu", "ca", "objects", "db")


class UnsignedObjectsEncoder(Encoder):
    """The baseline: the card as it was before issue 11 (CHUID with an empty signature, no
    Security Object), everything else the same."""

    def _card_objects(self, job, certificates):
        chuid = (tlv(0x30, job.fascn) + tlv(0x34, job.card_uuid.bytes)
                 + tlv(0x35, job.valid_until.strftime("%Y%m%d").encode()) + tlv(0x3E, b"") + tlv(0xFE, b""))
        return [*certificates, (profiles.OBJECT_CHUID, chuid),
                (profiles.OBJECT_CCC, card_objects.ccc(job.card_uuid))]


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
    """Encode ``cards`` cards per case (1 and 4 certificates, baseline and signed, interleaved so
    both see the same machine); one row of per-card averages per case."""
    rows = []
    issuer = CardIdentityIssuer()
    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        engine = create_engine(f"sqlite:///{folder / 'bench.db'}")
        Base.metadata.create_all(engine)
        sessions = TimedSessions(sessionmaker(engine, expire_on_commit=False))
        LocalCA.init(folder / "ca", "bench")
        ca = LocalCA(folder / "ca", "bench", sessions)
        custody = Custody(sessions, load_or_create_key(folder))
        signed = build_encoder("pcsc", "Virtual PCD*", "piv-3des-p256", ca, custody)
        baseline = UnsignedObjectsEncoder(signed.card_source, ca, custody, signed.profile)
        encoders = {"baseline": baseline, "signed": signed}
        with PcscTestbed(folder / "testbed") as testbed:
            card_id = 0

            def encode(encoder, count: int) -> dict[str, float]:
                nonlocal card_id
                card_id += 1
                testbed.new_card()
                identity = issuer.new(card_id, 0)
                job = CardJob(card_id, f"B-{card_id:06d}", "Bench", date.today() + timedelta(days=14),
                              f"bench/{card_id}", folder, certificates=CERTIFICATES[:count - 1],
                              card_uuid=identity.card_uuid, fascn=identity.fascn.pack())
                sessions.seconds = 0.0
                started = time.perf_counter()
                encoder.encode(job)
                total = time.perf_counter() - started
                ca_db = sessions.seconds  # custody stores its rows in the CA's transaction
                return {"total": total, "apdu": encoder.timings["apdu"], "ca": encoder.timings["ca"] - ca_db,
                        "objects": encoder.timings["objects"], "db": sessions.seconds}

            for encoder in encoders.values():  # warm up: content signer loaded, connections open
                encode(encoder, 1)
            for count in (1, 4):
                totals = {kind: dict.fromkeys(PARTS, 0.0) for kind in encoders}
                for _ in range(cards):
                    for kind, encoder in encoders.items():
                        for key, value in encode(encoder, count).items():
                            totals[kind][key] += value
                for kind in encoders:
                    averages = (1000 * totals[kind][part] / cards for part in PARTS)
                    rows.append((kind, count, cards, *averages))
        engine.dispose()
    return rows


def main() -> None:
    """Print the table: per card, then per certificate and the ratio to the same run's baseline."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=3, help="cards per case")
    cards = parser.parse_args().cards
    # One pcscd and one vpcd port a machine: wait for the pcscd tests' turn, as they do.
    with open(Path(tempfile.gettempdir()) / "cardflow-pcscd-tests.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        rows = bench(cards)
    header = ("objects", "certs", "cards", "total ms", "APDU ms", "CA ms", "objects ms", "DB ms", "ms/cert",
              "x baseline")
    widths = (8, 5, 5, 9, 8, 7, 10, 6, 8, 10)
    print(" ".join(f"{name:>{width}}" for name, width in zip(header, widths, strict=True)))
    baseline_total = {}
    for kind, count, cards, total, apdu, ca, objects, db in rows:
        if kind == "baseline":
            baseline_total[count] = total
        values = (count, cards, total, apdu, ca, objects, db, total / count, total / baseline_total[count])
        decimals = (0, 0, 1, 1, 1, 1, 1, 1, 2)
        cells = [f"{value:>{width}.{places}f}" for value, width, places in zip(values, widths[1:], decimals,
                                                                                strict=True)]
        print(" ".join([f"{kind:>{widths[0]}}", *cells]))


if __name__ == "__main__":
    main()
