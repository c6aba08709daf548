"""A card's print file: one PDF page per side, each a whole-page picture with text and a QR code
drawn over it.

Written here rather than with a PDF library because printing is on every card's path and the
libraries cost more than all the rest of printing a card (measured per two-page card: fpdf2
about 2 ms, reportlab 25 ms, pikepdf 0.6 ms with the page contents still written by hand; this
writer about 0.1 ms). It writes the small part of PDF 1.4 a card needs: a JPEG embedded as it is
(DCTDecode, encoded once per template by the caller), text in the standard Helvetica-Bold
(WinAnsiEncoding, nothing to embed) and filled squares. Coordinates are in points from the top
left of the page, as on the card images.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image

from tasks.cardsdk.job import CardSdkError

FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>"
PLAIN_BYTES = frozenset(range(32, 127)) - frozenset(b"()\\")


@dataclass(frozen=True)
class Picture:
    """A JPEG and its size in pixels, encoded once and embedded as is in every page that shows it."""

    jpeg: bytes
    width: int
    height: int

    @classmethod
    def of(cls, image: Image.Image) -> Picture:
        """``image`` (RGB) as a JPEG, encoded as Pillow's own PDF writer does (its default quality)."""
        buffer = io.BytesIO()
        image.save(buffer, "JPEG")
        return cls(buffer.getvalue(), *image.size)


@dataclass(frozen=True)
class Text:
    """A line of text from ``x`` along its ``baseline``, ``size`` points high."""

    text: str
    x: float
    baseline: float
    size: float


@dataclass(frozen=True)
class Modules:
    """A QR code's module matrix (``True`` is dark) drawn as a ``side``-point square at ``x``, ``y``."""

    rows: Sequence[Sequence[bool]]
    x: float
    y: float
    side: float


@dataclass(frozen=True)
class Page:
    """One side of the card: its background picture stretched over the page, then the rest."""

    picture: Picture
    texts: Sequence[Text] = ()
    modules: Modules | None = None


def card_pdf(width: float, height: float, pages: Sequence[Page]) -> bytes:
    """The PDF of ``pages``, each ``width`` x ``height`` points; CardSdkError for text it cannot set."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"", FONT]
    kids = []
    for page in pages:
        first = len(objects) + 1  # this page's object number; its content and picture follow
        kids.append(b"%d 0 R" % first)
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %s %s] /Contents %d 0 R /Resources "
                       b"<< /Font << /F1 3 0 R >> /XObject << /Im1 %d 0 R >> >> >>"
                       % (_number(width), _number(height), first + 1, first + 2))
        objects.append(_stream(b"", _contents(page, width, height)))
        picture = page.picture
        objects.append(_stream(b"/Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceRGB "
                               b"/BitsPerComponent 8 /Filter /DCTDecode" % (picture.width, picture.height),
                               picture.jpeg))
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(kids), len(kids))
    return _file(objects)


def _contents(page: Page, width: float, height: float) -> bytes:
    """The page's drawing operators: the picture, the QR code's dark modules, then the text."""
    ops = [b"q %s 0 0 %s 0 0 cm /Im1 Do Q 0 g" % (_number(width), _number(height))]
    if page.modules is not None:
        # Drawn in module units (one module a unit, rows downwards from the code's top left), as
        # one path of all dark runs filled at once: abutting squares show no seams between them.
        code = page.modules
        step = code.side / len(code.rows)
        ops.append(b"q %s 0 0 %s %s %s cm" % (_number(step), _number(-step), _number(code.x),
                                              _number(height - code.y)))
        for row_index, row in enumerate(code.rows):
            start = None
            for column, dark in enumerate([*row, False]):
                if dark and start is None:
                    start = column
                elif not dark and start is not None:
                    ops.append(b"%d %d %d 1 re" % (start, row_index, column - start))
                    start = None
        ops.append(b"f Q")
    for text in page.texts:
        ops.append(b"BT /F1 %s Tf %s %s Td %s Tj ET" % (_number(text.size), _number(text.x),
                                                        _number(height - text.baseline), _string(text.text)))
    return b"\n".join(ops)


def _string(text: str) -> bytes:
    """``text`` as a PDF literal string in WinAnsiEncoding: delimiters and non-ASCII bytes escaped."""
    try:
        encoded = text.encode("cp1252")
    except UnicodeEncodeError as error:
        raise CardSdkError(f"The printer cannot print {text[error.start]!r} in {text[:60]!r}: card text "
                           "can use Western European letters, digits and punctuation only.") from None
    return b"(" + b"".join(bytes([byte]) if byte in PLAIN_BYTES else b"\\%03o" % byte
                           for byte in encoded) + b")"


def _number(value: float) -> bytes:
    """A PDF real with the hundredth of a point a card needs, without trailing zeros."""
    return (b"%.3f" % value).rstrip(b"0").rstrip(b".")


def _stream(entries: bytes, data: bytes) -> bytes:
    """A stream object of ``data`` with its dictionary ``entries`` and its length."""
    return b"<< %s /Length %d >>\nstream\n%s\nendstream" % (entries, len(data), data)


def _file(objects: list[bytes]) -> bytes:
    """The whole file: header, numbered objects, the cross-reference table of their offsets, trailer."""
    out = [b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"]
    offsets = []
    position = len(out[0])
    for number, body in enumerate(objects, start=1):
        offsets.append(position)
        out.append(b"%d 0 obj\n%s\nendobj\n" % (number, body))
        position += len(out[-1])
    out.append(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.extend(b"%010d 00000 n \n" % offset for offset in offsets)
    out.append(b"trailer\n<< /Size %d /Root 1 0 R >>\n" % (len(objects) + 1))
    out.append(b"startxref\n%d\n%%%%EOF\n" % position)
    return b"".join(out)
