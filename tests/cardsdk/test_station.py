"""A station draws a card while its chip is encoded and prints it only once the chip took its data."""

from __future__ import annotations

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
    assert not (tmp_path / "spool").exists()


def test_a_card_whose_chip_took_its_data_is_printed_as_drawn_while_it_was_encoded(make_job, tmp_path):
    job = make_job(spool_dir=tmp_path / "spool")
    result = Station(SpoolPrinter(), ChipThatTakes()).produce(job, "a1")
    assert result.physical_serial == "CHIP-1" and result.certificate_serials == ["1A"]
    drawn = SpoolPrinter().render(job, "a1")
    stem = tmp_path / "spool" / "card-17-attempt-1"
    front, back, pdf = (stem.with_name(stem.name + end) for end in ("-front.png", "-back.png", ".pdf"))
    assert result.files == [str(front), str(back), str(pdf)]
    assert front.read_bytes() == drawn.front_png and back.read_bytes() == drawn.back_png
    assert pdf.read_bytes()[:5] == b"%PDF-"
