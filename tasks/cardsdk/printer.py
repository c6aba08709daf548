"""The card printer: renders a card's front and back (CR80) to PNG and PDF in a spool folder.

A real print queue is one more ``Printer`` that sends the PDF on; the spool folder is the
embedded default and what the review page previews. Spool file names are built from the card id
and the attempt number only: a card number is data and never becomes part of a path.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import qrcode
from PIL import Image, ImageDraw, ImageFont

from tasks.cardsdk.job import CardJob, CardSdkError

DPI = 300
MM_PER_INCH = 25.4
CR80_MM = (85.60, 53.98)
SIZE = tuple(round(mm / MM_PER_INCH * DPI) for mm in CR80_MM)  # 1011 x 638 pixels
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
ATTEMPT_LABEL = re.compile(r"a([0-9]{1,9})")


@lru_cache(maxsize=16)
def _font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    """DejaVu when installed (Debian fonts-dejavu-core), Pillow's own scalable font otherwise."""
    path = FONT_DIR / ("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf")
    if path.exists():
        return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size)


@dataclass(frozen=True)
class PrintedCard:
    """Files written for one card and the print job's serial."""

    serial: str
    front_png: Path
    back_png: Path
    pdf: Path


@lru_cache(maxsize=32)
def _front_template(organisation: str) -> Image.Image:
    """What every front of ``organisation`` shares, drawn once (rendering is on the per-card path)."""
    image = Image.new("RGB", SIZE, "white")
    draw = ImageDraw.Draw(image)
    width, _height = SIZE
    draw.rectangle((0, 0, width, 110), fill=(20, 60, 120))
    draw.text((40, 55), organisation, font=_font(44, bold=True), fill="white", anchor="lm")
    draw.text((width // 2, 250), "TEMPORARY CARD", font=_font(86, bold=True), fill=(170, 20, 20), anchor="mm")
    draw.text((40, 420), "Card number", font=_font(30), fill=(90, 90, 90), anchor="lm")
    draw.text((40, 550), "Valid until", font=_font(30), fill=(90, 90, 90), anchor="lm")
    return image


def render_front(job: CardJob) -> Image.Image:
    """Organisation, TEMPORARY CARD, card number and valid-until date."""
    image = _front_template(job.organisation).copy()
    draw = ImageDraw.Draw(image)
    draw.text((40, 470), job.card_number, font=_font(52, bold=True), fill="black", anchor="lm")
    draw.text((40, 595), job.valid_until.isoformat(), font=_font(46, bold=True), fill="black", anchor="lm")
    return image


@lru_cache(maxsize=32)
def _back_template(organisation: str) -> Image.Image:
    """Where to return the card: the same on every back of ``organisation``."""
    image = Image.new("RGB", SIZE, "white")
    draw = ImageDraw.Draw(image)
    draw.text((500, 330), "If found, please return to", font=_font(28), fill=(90, 90, 90), anchor="lm")
    draw.text((500, 370), organisation, font=_font(28), fill=(90, 90, 90), anchor="lm")
    return image


def qr_image(data: str, size: int = 420) -> Image.Image:
    """The QR code of ``data`` as a ``size`` square, built from its module matrix in one go.

    A fixed mask pattern spares the eight trial encodings the library does to pick one (any mask
    is valid; scanners read them all).
    """
    code = qrcode.QRCode(border=2, error_correction=qrcode.constants.ERROR_CORRECT_M, mask_pattern=0)
    code.add_data(data)
    code.make(fit=True)
    matrix = code.get_matrix()
    modules = Image.frombytes("L", (len(matrix), len(matrix)),
                              bytes(0 if dark else 255 for row in matrix for dark in row))
    return modules.resize((size, size), Image.Resampling.NEAREST)


def render_back(job: CardJob) -> Image.Image:
    """A QR code of the card number, the number in clear, and where to return the card."""
    image = _back_template(job.organisation).copy()
    image.paste(qr_image(job.card_number), (40, (SIZE[1] - 420) // 2))
    ImageDraw.Draw(image).text((500, 250), job.card_number, font=_font(44, bold=True), fill="black",
                               anchor="lm")
    return image


class SpoolPrinter:
    """Writes front and back PNGs and a two-page PDF per card into the job's spool folder."""

    def print_card(self, job: CardJob, attempt_label: str) -> PrintedCard:
        """Render and spool one card; an unwritable spool folder is a CardSdkError."""
        stem = spool_stem(job.card_id, attempt_label)
        front, back = render_front(job), render_back(job)
        paths = PrintedCard(f"PRN-{uuid.uuid4().hex[:12].upper()}", job.spool_dir / f"{stem}-front.png",
                            job.spool_dir / f"{stem}-back.png", job.spool_dir / f"{stem}.pdf")
        try:
            job.spool_dir.mkdir(parents=True, exist_ok=True)
            # The PDF carries the print resolution; the PNGs are screen previews at half of it,
            # which keeps a 1,000-card order's printing within seconds rather than a minute.
            for image, path in ((front, paths.front_png), (back, paths.back_png)):
                image.reduce(2).save(path, compress_level=1)
            front.save(paths.pdf, save_all=True, append_images=[back], resolution=DPI)
        except OSError as error:
            raise CardSdkError(f"The printer could not spool the card: {error.strerror or error}.") from error
        return paths


def spool_stem(card_id: int, attempt_label: str) -> str:
    """``card-17-attempt-2`` for card id 17 and label ``a2``: a file name made of integers only."""
    if type(card_id) is not int or card_id < 0:
        raise CardSdkError(f"The printer needs a card id that is a whole number, not {card_id!r}.")
    match = ATTEMPT_LABEL.fullmatch(attempt_label)
    if match is None:
        raise CardSdkError(f"The printer needs an attempt label like a1, not {attempt_label[:40]!r}.")
    return f"card-{card_id:d}-attempt-{int(match.group(1)):d}"
