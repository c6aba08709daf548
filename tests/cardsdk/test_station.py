"""A station draws a card while its chip is encoded and prints it only once the chip took its data."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pytest

from tasks.cardsdk.job import CardSdkError, EncodeResult
from tasks.cardsdk.printer import SpoolPrinter
from tasks.cardsdk.station import Station


class ChipThatFails:
    """An encoder whose card refuses its data."""

    def encode(self, job):
        raise CardSdkError("The card refused the data.")

    def revoke_attempt(self, attempt_ref, reason):
        return 0


class ChipThatTakes:
    """An encoder whose card takes its data."""

    def encode(self, job):
        return EncodeResult(chip_serial="CHIP-1", certificate_serials=["1A"])

    def revoke_attempt(self, attempt_ref, reason):
        return 0


def test_a_card_whose_chip_refused_its_data_is_never_printed(make_job, tmp_path):
    job = make_job(spool_dir=tmp_path / "spool")
    with pytest.raises(CardSdkError, match="refused the data"):
        Station(SpoolPrinter(), ChipThatFails()).produce(job, "a1")
    # It was drawn and staged while the chip was encoded; nothing of it stays, hidden parts
    # included (what stays is the next card's empty files, made ahead).
    left = [path for path in (tmp_path / "spool").iterdir() if not path.name.startswith(".ahead-")]
    assert left == []


def test_a_card_whose_chip_took_its_data_is_printed_as_drawn_while_it_was_encoded(make_job, tmp_path):
    job = make_job(spool_dir=tmp_path / "spool")
    result = Station(SpoolPrinter(), ChipThatTakes()).produce(job, "a1")
    assert result.physical_serial == "CHIP-1" and result.certificate_serials == ["1A"]
    drawn = SpoolPrinter().draw(job, "a1")
    stem = tmp_path / "spool" / "card-17-attempt-1"
    front, back, pdf = (stem.with_name(stem.name + end) for end in ("-front.png", "-back.png", ".pdf"))
    assert result.files == [str(front), str(back), str(pdf)]
    assert front.read_bytes() == drawn.front_png and back.read_bytes() == drawn.back_png
    assert pdf.read_bytes()[:5] == b"%PDF-"


def test_a_warmed_up_station_draws_its_first_card_in_the_process_started_ahead(make_job, tmp_path):
    station = Station(SpoolPrinter(), ChipThatTakes())
    before = {child.pid for child in multiprocessing.active_children()}
    station.warm_up()
    started = [child for child in multiprocessing.active_children()
               if child.pid not in before and child.name == "cardflow-drawing"]
    assert len(started) == 1 and started[0].is_alive()
    station.warm_up()  # one idle process is enough: no second one
    assert [child for child in multiprocessing.active_children()
            if child.pid not in before and child.name == "cardflow-drawing"] == started

    result = station.produce(make_job(spool_dir=tmp_path / "spool"), "a1")
    assert result.physical_serial == "CHIP-1"
    assert [child for child in multiprocessing.active_children()
            if child.pid not in before and child.name == "cardflow-drawing"] == started


class PrinterThatDrawsNothing(SpoolPrinter):
    """A printer whose device draws the card itself: nothing to draw here."""

    draws_apart = False

    def __init__(self):
        self.drawn_in: list[str] = []

    def stage(self, job, attempt_label):
        self.drawn_in.append(multiprocessing.current_process().name)
        return super().stage(job, attempt_label)


def test_a_printer_that_draws_nothing_gets_no_drawing_process(make_job, tmp_path):
    printer = PrinterThatDrawsNothing()
    station = Station(printer, ChipThatTakes())
    before = {child.pid for child in multiprocessing.active_children()}
    station.warm_up()
    result = station.produce(make_job(spool_dir=tmp_path / "spool"), "a1")
    assert result.physical_serial == "CHIP-1" and all(Path(file).is_file() for file in result.files)
    assert printer.drawn_in == [multiprocessing.current_process().name]  # drawn in the station's process
    assert not [child for child in multiprocessing.active_children()
                if child.pid not in before and child.name == "cardflow-drawing"]


class ChipThatTakesAndIsSpoiled(ChipThatTakes):
    """An encoder whose card takes its data; it records which attempts were spoiled."""

    def __init__(self):
        self.spoiled: list[tuple[str, str]] = []

    def revoke_attempt(self, attempt_ref, reason):
        self.spoiled.append((attempt_ref, reason))
        return 1


class PrinterThatJamsOnCard17(SpoolPrinter):
    """Jams on card 17's print, after its chip took its data."""

    def spool(self, job, card):
        if job.card_id == 17:
            raise CardSdkError("The printer jammed.")
        return super().spool(job, card)


def test_a_card_whose_print_failed_after_encoding_is_spoiled_and_the_next_card_prints(make_job, tmp_path):
    chip = ChipThatTakesAndIsSpoiled()
    station = Station(PrinterThatJamsOnCard17(), chip)
    station.warm_up()
    with pytest.raises(CardSdkError, match="The printer jammed"):
        station.produce(make_job(spool_dir=tmp_path / "spool"), "a1")
    assert chip.spoiled == [("order-3/card-17/attempt-1", "printing failed after encoding")]
    result = station.produce(make_job(card_id=18, spool_dir=tmp_path / "spool"), "a1")
    assert [Path(file).name for file in result.files] == [
        "card-18-attempt-1-front.png", "card-18-attempt-1-back.png", "card-18-attempt-1.pdf"]
    assert all(Path(file).is_file() for file in result.files)
    assert not list((tmp_path / "spool").glob("*card-17-*"))  # its hidden staged parts included


def test_the_drawing_process_goes_on_to_the_next_card_after_a_refused_chip(make_job, tmp_path):
    station = Station(SpoolPrinter(), ChipThatFails())
    station.warm_up()
    with pytest.raises(CardSdkError, match="refused the data"):
        station.produce(make_job(spool_dir=tmp_path / "spool"), "a1")
    station.encoder = ChipThatTakes()
    result = station.produce(make_job(card_id=18, spool_dir=tmp_path / "spool"), "a1")
    assert result.physical_serial == "CHIP-1" and all(Path(file).is_file() for file in result.files)
    assert Path(result.files[0]).name == "card-18-attempt-1-front.png"


class ChipThatLooksAtTheSpool(ChipThatTakes):
    """An encoder that waits, while it encodes, until the card's staged files are in the spool
    folder, and notes what a folder watcher would see then."""

    def __init__(self, spool: Path):
        self.spool, self.seen = spool, []

    def encode(self, job):
        deadline = time.monotonic() + 30
        while len(list(self.spool.glob(".card-*.part"))) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        # Once it answered, the drawing process makes the next card's files ahead: not this card's.
        self.seen = sorted(path.name for path in self.spool.iterdir() if not path.name.startswith(".ahead-"))
        return super().encode(job)


def test_a_card_staged_while_its_chip_is_encoded_shows_in_the_spool_only_once_printed(make_job, tmp_path):
    chip = ChipThatLooksAtTheSpool(tmp_path / "spool")
    result = Station(SpoolPrinter(), chip).produce(make_job(spool_dir=tmp_path / "spool"), "a1")
    assert chip.seen == [".card-17-attempt-1-back.png.part", ".card-17-attempt-1-front.png.part",
                         ".card-17-attempt-1.pdf.part"]  # staged under hidden names, not printed
    names = [path.name for path in (tmp_path / "spool").iterdir()]
    # Printed: the same files under their names; hidden, only the empty files the drawing process
    # made ahead for the next card.
    assert sorted(name for name in names if not name.startswith(".")) == sorted(
        Path(file).name for file in result.files)
    hidden = [name for name in names if name.startswith(".")]
    assert all(name.startswith(".ahead-") and name.endswith(".part") for name in hidden)
