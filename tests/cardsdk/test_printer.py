"""The printed card: its back's QR code scans to the card number (read by zxing-cpp, an
independent decoder), and the spool holds the previews and the print-resolution PDF."""

from __future__ import annotations

from datetime import date

import pytest
import zxingcpp
from PIL import Image

from tasks.cardsdk.job import CardJob
from tasks.cardsdk.printer import DPI, SIZE, SpoolPrinter, render_back


def _job(tmp_path, number: str = "TC-000042", organisation: str = "Test Organisation") -> CardJob:
    return CardJob(card_id=42, card_number=number, organisation=organisation, valid_until=date(2026, 12, 8),
                   attempt_ref="order-1/card-42/attempt-1", spool_dir=tmp_path / "spool")


@pytest.mark.parametrize("number", ["TC-000042", "TC-999999", "A-" + "7" * 38])
def test_the_qr_code_on_the_back_scans_to_the_card_number(tmp_path, number):
    decoded = [result.text for result in zxingcpp.read_barcodes(render_back(_job(tmp_path, number)))]
    assert decoded == [number]


def test_the_spool_holds_scannable_previews_and_a_two_page_pdf_at_print_resolution(tmp_path):
    printed = SpoolPrinter().print_card(_job(tmp_path), "a1")
    with Image.open(printed.back_png) as back:
        assert back.size == ((SIZE[0] + 1) // 2, (SIZE[1] + 1) // 2)  # a screen preview
        assert [result.text for result in zxingcpp.read_barcodes(back)] == ["TC-000042"]
    # Two pages, each the whole card at the print resolution: 1011 pixels on 85.6 mm (300 dpi).
    pdf = printed.pdf.read_bytes()
    assert pdf.startswith(b"%PDF") and pdf.count(f"/Width {SIZE[0]}".encode()) == 2
    assert pdf.count(f"/MediaBox [ 0 0 {SIZE[0] * 72 / DPI:.2f}".encode()) == 2


def test_organisations_get_their_own_card_templates(tmp_path):
    first = render_back(_job(tmp_path, organisation="First Org"))
    second = render_back(_job(tmp_path, organisation="Second Org"))
    assert first.tobytes() != second.tobytes()
