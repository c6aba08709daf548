"""The printed card: its back's QR code scans to the card number (read by zxing-cpp, an
independent decoder), and the spool holds the previews and a print-resolution PDF that PDFium (an
independent renderer) opens, shows and reads back."""

from __future__ import annotations

from datetime import date

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
import pytest
import zxingcpp
from PIL import Image

from tasks.cardsdk.job import CardJob, CardSdkError
from tasks.cardsdk.printer import (
    BLACK,
    BLUE,
    CR80_MM,
    DPI,
    GREY,
    MM_PER_INCH,
    RED,
    SIZE,
    WHITE,
    SpoolPrinter,
    render_back,
)

POINTS_PER_INCH = 72
# Card numbers a PDF must carry as they are: its string delimiters, its escape character, accents.
HOSTILE_NUMBERS = ["TC-(42)\\)(", "Zoë-(7)\\ Ünal €"]


def _job(tmp_path, number: str = "TC-000042", organisation: str = "Test Organisation") -> CardJob:
    return CardJob(card_id=42, card_number=number, organisation=organisation, valid_until=date(2026, 12, 8),
                   attempt_ref="order-1/card-42/attempt-1", spool_dir=tmp_path / "spool")


def _scan(image: Image.Image) -> list[str]:
    return [result.text for result in zxingcpp.read_barcodes(image)]


@pytest.mark.parametrize("number", ["TC-000042", "TC-999999", "A-" + "7" * 38])
def test_the_qr_code_on_the_back_scans_to_the_card_number(tmp_path, number):
    assert _scan(render_back(_job(tmp_path, number))) == [number]


def test_the_spool_holds_scannable_previews_and_a_two_page_pdf_at_print_resolution(tmp_path):
    printed = SpoolPrinter().print_card(_job(tmp_path), "a1")
    for path in (printed.front_png, printed.back_png):
        with Image.open(path) as preview:
            assert preview.size == ((SIZE[0] + 1) // 2, (SIZE[1] + 1) // 2)  # a screen preview
    with Image.open(printed.back_png) as back:
        assert _scan(back) == ["TC-000042"]
    pdf = pdfium.PdfDocument(printed.pdf)
    try:
        assert len(pdf) == 2  # front and back
        card_points = [mm / MM_PER_INCH * POINTS_PER_INCH for mm in CR80_MM]
        for page in pdf:
            assert page.get_size() == pytest.approx(card_points, abs=0.01)
            # Every picture on the page is at the print resolution (300 dpi), none at screen size.
            images = list(page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE]))
            assert images
            for image in images:
                left, _bottom, right, _top = image.get_bounds()
                dots_per_inch = image.get_px_size()[0] / ((right - left) / POINTS_PER_INCH)
                assert dots_per_inch == pytest.approx(DPI, rel=0.01)
    finally:
        pdf.close()


def test_the_previews_show_the_card_s_own_colours(tmp_path):
    printed = SpoolPrinter().print_card(_job(tmp_path), "a1")
    with Image.open(printed.front_png) as front, Image.open(printed.back_png) as back:
        front_colours = {colour for _count, colour in front.convert("RGB").getcolors(256)}
        back_colours = {colour for _count, colour in back.convert("RGB").getcolors(256)}
    assert {WHITE, BLUE, RED, GREY, BLACK} <= front_colours  # paper, band, title, labels, number
    assert {WHITE, GREY, BLACK} <= back_colours


@pytest.mark.parametrize("number", ["TC-000042", "ABCDEFGH-123456789012", *HOSTILE_NUMBERS])
def test_the_pdf_shows_the_card_number_and_its_back_scans_to_it(tmp_path, number):
    printed = SpoolPrinter().print_card(_job(tmp_path, number), "a1")
    pdf = pdfium.PdfDocument(printed.pdf)
    try:
        front, back = pdf[0], pdf[1]
        front_text = front.get_textpage().get_text_range()
        assert number in front_text and "2026-12-08" in front_text
        assert number in back.get_textpage().get_text_range()
        # The back as a printer draws it, at its resolution.
        assert _scan(back.render(scale=DPI / POINTS_PER_INCH).to_pil()) == [number]
    finally:
        pdf.close()


@pytest.mark.parametrize("number", HOSTILE_NUMBERS)
def test_the_previews_of_a_card_number_with_pdf_special_characters_scan_to_it(tmp_path, number):
    printed = SpoolPrinter().print_card(_job(tmp_path, number), "a1")
    with Image.open(printed.back_png) as back:
        assert _scan(back) == [number]


def test_a_card_number_the_print_font_cannot_show_is_refused_before_anything_is_spooled(tmp_path):
    with pytest.raises(CardSdkError, match="The printer cannot print 'Ж'"):
        SpoolPrinter().print_card(_job(tmp_path, "Жук-(1)"), "a1")
    assert not (tmp_path / "spool").exists()


def test_an_unwritable_spool_folder_is_a_printer_error_the_operator_can_read(tmp_path):
    (tmp_path / "spool").write_text("a file where the spool folder should be")
    with pytest.raises(CardSdkError, match="The printer could not spool the card"):
        SpoolPrinter().print_card(_job(tmp_path), "a1")


def test_organisations_get_their_own_card_templates(tmp_path):
    first = render_back(_job(tmp_path, organisation="First Org"))
    second = render_back(_job(tmp_path, organisation="Second Org"))
    assert first.tobytes() != second.tobytes()


def test_the_next_card_fills_the_files_made_ahead_for_it_and_the_rest_are_removed(tmp_path):
    printer, job = SpoolPrinter(), _job(tmp_path)
    printer.print_card(job, "a1")
    printer.make_ahead(job)  # what the drawing process does once it answered a card
    spool = tmp_path / "spool"
    ahead = {path.stat().st_ino: path.name for path in spool.glob(".ahead-*.part")}
    assert len(ahead) == 3 and all(path.stat().st_size == 0 for path in spool.glob(".ahead-*"))

    printed = printer.print_card(job, "a2")
    # The second card's files are the three made ahead, filled and renamed: none was created.
    assert {path.stat().st_ino for path in (printed.front_png, printed.back_png, printed.pdf)} == set(ahead)
    assert printed.pdf.read_bytes()[:5] == b"%PDF-" and not list(spool.glob(".*"))

    printer.make_ahead(job)
    printer.make_ahead(None)  # the drawing process ends: what it made ahead goes
    assert sorted(path.name for path in spool.iterdir()) == sorted(
        f"card-42-attempt-{n}{end}" for n in (1, 2) for end in ("-front.png", "-back.png", ".pdf"))
