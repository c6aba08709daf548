"""The card printer: renders a card's front and back (CR80) to PNG previews and a PDF in a spool folder.

A real print queue is one more ``Printer`` that sends the PDF on; the spool folder is the
embedded default and what the review page previews. Spool file names are built from the card id
and the attempt number only: a card number is data and never becomes part of a path.

Printing is on every card's path, so what all cards of an organisation share is drawn once: its
templates, at print resolution as JPEG for the PDF and at half of it for the previews. Each card
then only adds its number, valid-until date and QR code: as text and squares in the PDF (sharp
at any printer resolution) and drawn on a copy of the preview templates.
"""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import qrcode
from PIL import Image, ImageDraw, ImageFont

from tasks.cardsdk.card_pdf import Modules, Page, Picture, Text, card_pdf
from tasks.cardsdk.job import CardJob, CardSdkError

DPI = 300
MM_PER_INCH = 25.4
POINT = 72 / DPI  # points (what a PDF measures in) per pixel at print resolution
CR80_MM = (85.60, 53.98)
CR80_POINTS = tuple(mm / MM_PER_INCH * 72 for mm in CR80_MM)
SIZE = tuple(round(mm / MM_PER_INCH * DPI) for mm in CR80_MM)  # 1011 x 638 pixels
PREVIEW = 2  # previews are screen images at 1/PREVIEW of the print resolution
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
ATTEMPT_LABEL = re.compile(r"a([0-9]{1,9})")
Colour = tuple[int, int, int]
WHITE, BLACK, GREY, RED, BLUE = (255, 255, 255), (0, 0, 0), (90, 90, 90), (170, 20, 20), (20, 60, 120)

# Each card's own marks, in pixels at print resolution: text as (x, y of its left middle, font
# size) and the QR code as (left, top, side).
FRONT_NUMBER, FRONT_VALID_UNTIL, BACK_NUMBER = (40, 470, 52), (40, 595, 46), (500, 250, 44)
QR_BOX = (40, (SIZE[1] - 420) // 2, 420)


def _palette(pairs: Sequence[tuple[Colour, Colour]], steps: int = 16) -> Image.Image:
    """Every ink over its background in ``steps`` blends: all the colours antialiased text can take."""
    colours = dict.fromkeys(
        tuple(round(paper_level + (ink_level - paper_level) * step / (steps - 1))
              for paper_level, ink_level in zip(paper, ink, strict=True))
        for paper, ink in pairs for step in range(steps))
    palette = Image.new("P", (1, 1))
    palette.putpalette([channel for colour in colours for channel in colour])
    return palette


# Previews are palette PNGs: a fifth of the time of RGB ones to encode, the same to the eye. Sixteen
# blends a pair keep every pure ink exact (Pillow maps colours to a palette by approximation).
PREVIEW_PALETTE = _palette(((WHITE, BLACK), (WHITE, GREY), (WHITE, RED), (BLUE, WHITE)))


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


@dataclass(frozen=True)
class Template:
    """What every card of an organisation shows on one side: as a preview, and as the PDF's picture."""

    preview: Image.Image
    picture: Picture


def _draw_front(organisation: str) -> Image.Image:
    """Organisation, TEMPORARY CARD and the labels, at print resolution."""
    image = Image.new("RGB", SIZE, WHITE)
    draw = ImageDraw.Draw(image)
    width, _height = SIZE
    draw.rectangle((0, 0, width, 110), fill=BLUE)
    draw.text((40, 55), organisation, font=_font(44, bold=True), fill=WHITE, anchor="lm")
    draw.text((width // 2, 250), "TEMPORARY CARD", font=_font(86, bold=True), fill=RED, anchor="mm")
    draw.text((40, 420), "Card number", font=_font(30), fill=GREY, anchor="lm")
    draw.text((40, 550), "Valid until", font=_font(30), fill=GREY, anchor="lm")
    return image


def _draw_back(organisation: str) -> Image.Image:
    """Where to return the card, at print resolution."""
    image = Image.new("RGB", SIZE, WHITE)
    draw = ImageDraw.Draw(image)
    draw.text((500, 330), "If found, please return to", font=_font(28), fill=GREY, anchor="lm")
    draw.text((500, 370), organisation, font=_font(28), fill=GREY, anchor="lm")
    return image


@lru_cache(maxsize=64)
def _template(organisation: str, side: str) -> Template:
    """The ``side`` ("front" or "back") every card of ``organisation`` shares, drawn and encoded once."""
    image = (_draw_front if side == "front" else _draw_back)(organisation)
    return Template(image.reduce(PREVIEW), Picture.of(image))


def qr_modules(data: str) -> list[list[bool]]:
    """The QR code of ``data`` as rows of modules (``True`` is dark), quiet zone included.

    A fixed mask pattern spares the eight trial encodings the library does to pick one (any mask
    is valid; scanners read them all).
    """
    code = qrcode.QRCode(border=2, error_correction=qrcode.constants.ERROR_CORRECT_M, mask_pattern=0)
    code.add_data(data)
    code.make(fit=True)
    return code.get_matrix()


def _draw_text(image: Image.Image, mark: tuple[int, int, int], text: str) -> None:
    """``text`` on a preview where ``mark`` puts it at print resolution."""
    x, y, size = mark
    ImageDraw.Draw(image).text((x / PREVIEW, y / PREVIEW), text, font=_font(size // PREVIEW, bold=True),
                               fill=BLACK, anchor="lm")


def render_front(job: CardJob) -> Image.Image:
    """The front's preview: organisation, TEMPORARY CARD, card number and valid-until date."""
    image = _template(job.organisation, "front").preview.copy()
    _draw_text(image, FRONT_NUMBER, job.card_number)
    _draw_text(image, FRONT_VALID_UNTIL, job.valid_until.isoformat())
    return image


def render_back(job: CardJob, modules: list[list[bool]] | None = None) -> Image.Image:
    """The back's preview: a QR code of the card number (its ``modules`` if the caller has them),
    the number in clear, and where to return the card."""
    rows = modules or qr_modules(job.card_number)
    left, top, side = (value // PREVIEW for value in QR_BOX)
    modules_image = bytes(0 if dark else 255 for row in rows for dark in row)
    code = Image.frombytes("L", (len(rows), len(rows)), modules_image)
    image = _template(job.organisation, "back").preview.copy()
    image.paste(code.resize((side, side), Image.Resampling.NEAREST), (left, top))
    _draw_text(image, BACK_NUMBER, job.card_number)
    return image


def _text(mark: tuple[int, int, int], text: str) -> Text:
    """``text`` where ``mark`` puts it, in points, on the baseline the preview's font puts it on."""
    x, y, size = mark
    ascent, descent = _font(size, bold=True).getmetrics()
    return Text(text, x * POINT, (y + (ascent - descent) / 2) * POINT, size * POINT)


def print_file(job: CardJob, modules: list[list[bool]]) -> bytes:
    """The card's PDF: front and back at print resolution, CR80, with the QR code of ``modules``."""
    number, valid_until = job.card_number, job.valid_until.isoformat()
    left, top, side = (value * POINT for value in QR_BOX)
    return card_pdf(*CR80_POINTS, [
        Page(_template(job.organisation, "front").picture,
             [_text(FRONT_NUMBER, number), _text(FRONT_VALID_UNTIL, valid_until)]),
        Page(_template(job.organisation, "back").picture, [_text(BACK_NUMBER, number)],
             Modules(modules, left, top, side)),
    ])


@dataclass(frozen=True)
class RenderedCard:
    """One card's print job drawn in memory: its two previews and its PDF."""

    stem: str
    front_png: bytes
    back_png: bytes
    pdf: bytes


@dataclass(frozen=True)
class StagedCard:
    """A drawn card written into its spool folder under hidden names (``.card-17-attempt-1.pdf.part``),
    not printed yet: ``spool`` prints it, ``discard`` throws it away."""

    stem: str
    parts: tuple[Path, ...]  # front PNG, back PNG, PDF


class SpoolPrinter:
    """Writes front and back PNGs and a two-page PDF per card into the job's spool folder.

    Printing is two steps, so a station can draw and stage the card while its chip is encoded and
    print only a card whose chip took its data: ``stage`` (all of the work: drawing, and writing
    the files under hidden names) and ``spool`` (the print: renaming them into place, the PDF
    last). Staging runs in the drawing process, so the station's own part of a print is three
    renames (0.03 ms each; creating a file costs this disk up to 1.5 ms). A folder watcher never
    sees a half-written file, and a crash leaves hidden ``.part`` files, never a print.
    """

    # Drawing a card is tens of milliseconds of Python: worth a process beside the encoding
    # (tasks.cardsdk.drawing). A printer that draws nothing itself says False.
    draws_apart = True
    # The folder and the empty files made in it ahead of the next card (``make_ahead``).
    _ahead: tuple[Path, list[Path]] | None = None

    def draw(self, job: CardJob, attempt_label: str) -> RenderedCard:
        """Draw one card in memory; a card id or attempt label unfit for a file name is a CardSdkError."""
        stem = spool_stem(job.card_id, attempt_label)
        modules = qr_modules(job.card_number)
        pdf = print_file(job, modules)
        sides = []
        for image in (render_front(job), render_back(job, modules)):
            png = io.BytesIO()
            preview = image.quantize(palette=PREVIEW_PALETTE, dither=Image.Dither.NONE)
            preview.save(png, "PNG", compress_level=1)
            sides.append(png.getvalue())
        return RenderedCard(stem, sides[0], sides[1], pdf)

    def stage(self, job: CardJob, attempt_label: str) -> StagedCard:
        """Draw one card and write it under hidden names; an unwritable folder is a CardSdkError."""
        card = self.draw(job, attempt_label)
        staged = StagedCard(card.stem, tuple(path.with_name(f".{path.name}.part")
                                             for path in _spool_paths(job.spool_dir, card.stem)))
        try:
            job.spool_dir.mkdir(parents=True, exist_ok=True)
            for data, part in zip((card.front_png, card.back_png, card.pdf), staged.parts, strict=True):
                spare = self._take_ahead(job.spool_dir)
                if spare is not None:
                    with suppress(OSError):  # gone meanwhile: the file is created below instead
                        spare.rename(part)
                part.write_bytes(data)
        except OSError as error:
            self.discard(staged)
            raise CardSdkError(f"The printer could not spool the card: {error.strerror or error}.") from error
        return staged

    def spool(self, job: CardJob, staged: StagedCard) -> PrintedCard:
        """Print a staged card: its files take their names, the PDF last."""
        paths = _spool_paths(job.spool_dir, staged.stem)
        done: list[Path] = []
        try:
            for part, path in zip(staged.parts, paths, strict=True):
                part.rename(path)
                done.append(path)
        except OSError as error:
            for path in done:  # a print is all of its files or none
                path.unlink(missing_ok=True)
            raise CardSdkError(f"The printer could not spool the card: {error.strerror or error}.") from error
        return PrintedCard(f"PRN-{uuid.uuid4().hex[:12].upper()}", *paths)

    def discard(self, staged: StagedCard) -> None:
        """Throw away a staged card that will not be printed (its chip refused its data)."""
        for part in staged.parts:
            with suppress(OSError):  # a leftover hidden part is never printed; the card's error matters
                part.unlink(missing_ok=True)

    def make_ahead(self, job: CardJob | None) -> None:
        """Create three empty hidden files in ``job``'s spool folder for the next card to fill
        and rename; ``None`` removes those made and not used.

        The drawing process calls it once it answered a card, while the station encodes and
        records: creating a file is the slow part of staging on some disks (1.5 ms here, against
        0.1 ms to fill one that exists), and the next card's drawing must be done before its chip.
        """
        if self._ahead is not None and (job is None or self._ahead[0] != job.spool_dir):
            for spare in self._ahead[1]:
                with suppress(OSError):
                    spare.unlink(missing_ok=True)
            self._ahead = None
        if job is None:
            return
        if self._ahead is None:
            self._ahead = (job.spool_dir, [])
        spares = self._ahead[1]
        while len(spares) < 3:
            spare = job.spool_dir / f".ahead-{uuid.uuid4().hex}.part"
            spare.touch(exist_ok=False)
            spares.append(spare)

    def _take_ahead(self, folder: Path) -> Path | None:
        """An empty file made ahead in ``folder``, if one is left."""
        if self._ahead is None or self._ahead[0] != folder or not self._ahead[1]:
            return None
        return self._ahead[1].pop()

    def print_card(self, job: CardJob, attempt_label: str) -> PrintedCard:
        """Stage and print one card."""
        return self.spool(job, self.stage(job, attempt_label))


def _spool_paths(folder: Path, stem: str) -> tuple[Path, Path, Path]:
    """Where a printed card's files go: front PNG, back PNG, PDF."""
    return folder / f"{stem}-front.png", folder / f"{stem}-back.png", folder / f"{stem}.pdf"


def spool_stem(card_id: int, attempt_label: str) -> str:
    """``card-17-attempt-2`` for card id 17 and label ``a2``: a file name made of integers only."""
    if type(card_id) is not int or card_id < 0:
        raise CardSdkError(f"The printer needs a card id that is a whole number, not {card_id!r}.")
    match = ATTEMPT_LABEL.fullmatch(attempt_label)
    if match is None:
        raise CardSdkError(f"The printer needs an attempt label like a1, not {attempt_label[:40]!r}.")
    return f"card-{card_id:d}-attempt-{int(match.group(1)):d}"
