"""The PIN letter: one A4 page for a sealed PIN mailer, built in memory and never stored.

The top third shows through the mailer's window (the holder's name and unit); the PIN (and the
PUK when the options say so) sits in the middle third, which the sealed mailer hides. Text goes
through fpdf2, which escapes it: a holder's name cannot add PDF syntax. The core PDF fonts only
know Latin-1, so a name with other letters is printed with the nearest Latin-1 letters.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from fpdf import FPDF


@dataclass(frozen=True)
class LetterFacts:
    """What the letter says (the PIN and PUK only live as long as the request that prints it)."""

    organisation: str
    card_number: str
    holder_name: str
    holder_unit: str
    valid_until: str
    pin: str
    puk: str | None = None


# Letters NFKD does not take apart into a Latin-1 letter and an accent.
NEAREST = str.maketrans({"Ł": "L", "ł": "l", "Đ": "D", "đ": "d", "Ħ": "H", "ħ": "h", "ı": "i", "Œ": "OE",
                         "œ": "oe", "ŋ": "n", "Ŋ": "N", "ſ": "s"})


def _latin1(text: str) -> str:
    """``text`` in the letters a core PDF font has: the nearest Latin-1 letter, else "?"."""
    out = []
    for char in text.translate(NEAREST):
        if ord(char) < 256:
            out.append(char)
            continue
        parts = unicodedata.normalize("NFKD", char)
        base = "".join(part for part in parts if not unicodedata.combining(part))
        out.append(base if base and all(ord(part) < 256 for part in base) else "?")
    return "".join(out)


def _line(pdf: FPDF, text: str, size: int = 11, style: str = "", height: float = 6) -> None:
    pdf.set_font("Helvetica", style, size)
    pdf.multi_cell(0, height, _latin1(text), new_x="LMARGIN", new_y="NEXT")


def pin_letter_pdf(facts: LetterFacts) -> bytes:
    """The letter as PDF bytes."""
    pdf = FPDF(format="A4")
    pdf.set_title(_latin1(f"PIN letter {facts.card_number}"))
    pdf.set_creator("cardflow")
    pdf.set_auto_page_break(False)
    pdf.add_page()
    pdf.set_margins(20, 20, 20)
    pdf.set_xy(20, 20)
    _line(pdf, facts.organisation, 9, "B")
    _line(pdf, "Confidential - to be opened by the addressee only", 9)
    pdf.set_xy(20, 50)  # the mailer's window
    _line(pdf, facts.holder_name, 13, "B", 7)
    if facts.holder_unit:
        _line(pdf, facts.holder_unit, 11)
    pdf.set_dash_pattern(dash=2, gap=2)
    pdf.line(10, 99, 200, 99)  # the first fold
    pdf.set_xy(20, 110)
    _line(pdf, f"Your temporary card {facts.card_number}", 14, "B", 8)
    _line(pdf, f"Valid until {facts.valid_until}. Keep this letter apart from the card.", 10)
    pdf.ln(6)
    _line(pdf, "PIN", 10)
    _line(pdf, facts.pin, 22, "B", 11)
    if facts.puk:
        pdf.ln(3)
        _line(pdf, "PUK (unblocks the card after wrong PINs)", 10)
        _line(pdf, facts.puk, 18, "B", 9)
    pdf.line(10, 198, 200, 198)  # the second fold
    pdf.set_dash_pattern()
    pdf.set_xy(20, 210)
    _line(pdf, "Your PIN protects the card's keys. Nobody from the organisation will ever ask for it. "
               "Destroy this letter once you have learnt the PIN. If the card is lost, report it at once "
               "so that it is locked.", 9, height=5)
    return bytes(pdf.output())
