"""Measuring what the engine and the database cost a card: a station that prints nothing, and a
counter of the statements sent (shared by the per-card cost test and bench.card_cost)."""

from __future__ import annotations

import threading

from sqlalchemy import event

from engine import bootstrap
from engine.config import Settings
from tasks.cardsdk.printer import PrintedCard
from tasks.cardsdk.station import Station


class BlankPrinter:
    """A printer that prints nothing: what remains is the engine and the database."""

    draws_apart = False  # nothing to draw, so no drawing process (printing is off)

    def stage(self, job, attempt_label: str) -> str:
        return f"card-{job.card_id}-{attempt_label}"

    def discard(self, stem: str) -> None:
        pass

    def spool(self, job, stem: str) -> PrintedCard:
        stem = job.spool_dir / stem
        return PrintedCard("PRN-BLANK", stem.with_suffix(".f.png"), stem.with_suffix(".b.png"),
                           stem.with_suffix(".pdf"))


class StatementCounter:
    """Counts the statements sent to the database while ``on``, except those of the thread
    ``waiting`` names: a test polling for the runner reads as often as the machine is slow."""

    def __init__(self, engine):
        self.count, self.on, self.waiting = 0, False, None
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, *_args) -> None:
        self.count += self.on and threading.get_ident() != self.waiting


def blank_station_services(settings: Settings) -> bootstrap.Services:
    """The product on a fresh, deployed database whose station prints nothing."""
    bootstrap.init_database(settings)
    services = bootstrap.build_services(settings, station_factory=lambda _sessions: Station(BlankPrinter()))
    bootstrap.deploy(services, "test")
    return services


def print_only(services: bootstrap.Services) -> None:
    """Deploy a copy of the option script with encoding off, as an admin would."""
    from engine.bootstrap import OPTION_VALIDATORS
    from engine.db import unit_of_work
    from engine.definitions import store_options, validate_options

    source = services.settings.source_path / "options" / "TempCardsScriptOptions"
    edited = services.settings.instance_path / "TempCardsScriptOptions"
    text = source.read_text().replace("encode_card = True", "encode_card = False")
    edited.write_text(text.replace('certificates = ["PIV Authentication"]', "certificates = []"))
    with unit_of_work(services.sessions) as session:
        store_options(session, validate_options(edited, OPTION_VALIDATORS), "bench")
