"""Bench: printing a card (front and back PNG previews, two-page PDF) with the spool printer.

Floor (issue 9): under 6 ms a card. The baseline is the printer as it was before (whole card
drawn at print resolution, previews reduced from it and saved as RGB PNGs, the PDF JPEG-encoding
both sides at every card), kept below and timed in the same run, alternating with the current
printer, so that the ratio holds on a shared machine.
Run from the project root: .venv/bin/python -m bench.printing [--cards 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import date
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw

from tasks.cardsdk import printer
from tasks.cardsdk.job import CardJob

FLOOR_MS = 6.0


@lru_cache(maxsize=32)
def _baseline_templates(organisation: str) -> tuple[Image.Image, Image.Image]:
    """The baseline's per-organisation templates (the same drawing as today's, at print resolution)."""
    return printer._draw_front(organisation), printer._draw_back(organisation)


def _baseline_print_card(job: CardJob) -> None:
    """The printer before issue 9: full-size sides, reduced RGB previews, Pillow's PDF writer."""
    stem = printer.spool_stem(job.card_id, "a1")
    front_template, back_template = _baseline_templates(job.organisation)
    front = front_template.copy()
    draw = ImageDraw.Draw(front)
    draw.text((40, 470), job.card_number, font=printer._font(52, bold=True), fill="black", anchor="lm")
    draw.text((40, 595), job.valid_until.isoformat(), font=printer._font(46, bold=True), fill="black",
              anchor="lm")
    rows = printer.qr_modules(job.card_number)
    modules = Image.frombytes("L", (len(rows), len(rows)),
                              bytes(0 if dark else 255 for row in rows for dark in row))
    back = back_template.copy()
    back.paste(modules.resize((420, 420), Image.Resampling.NEAREST), (40, (printer.SIZE[1] - 420) // 2))
    ImageDraw.Draw(back).text((500, 250), job.card_number, font=printer._font(44, bold=True), fill="black",
                              anchor="lm")
    job.spool_dir.mkdir(parents=True, exist_ok=True)
    for image, side in ((front, "front"), (back, "back")):
        image.reduce(2).save(job.spool_dir / f"{stem}-{side}.png", compress_level=1)
    front.save(job.spool_dir / f"{stem}.pdf", save_all=True, append_images=[back], resolution=printer.DPI)


def _current_print_card(job: CardJob) -> None:
    """Today's printer."""
    printer.SpoolPrinter().print_card(job, "a1")


def _time(print_card, cards: int, spool: Path) -> tuple[float, float]:
    """Wall and CPU milliseconds a card for printing ``cards`` cards into ``spool``."""
    jobs = [CardJob(card_id, f"TC-{card_id:06d}", "Bench Organisation", date(2026, 12, 8),
                    f"bench/card-{card_id}", spool) for card_id in range(1, cards + 1)]
    print_card(jobs[0])  # templates drawn, fonts loaded: once per process
    wall, cpu = time.perf_counter(), time.process_time()
    for job in jobs:
        print_card(job)
    return 1000 * (time.perf_counter() - wall) / cards, 1000 * (time.process_time() - cpu) / cards


def main() -> None:
    """Print the table: baseline and current printer, median of the rounds, the ratio and the floor."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of each printer")
    args = parser.parse_args()
    results: dict[str, list[tuple[float, float]]] = {"baseline": [], "current": []}
    with tempfile.TemporaryDirectory() as folder:
        for round_number in range(args.rounds):
            for name, print_card in (("baseline", _baseline_print_card), ("current", _current_print_card)):
                results[name].append(_time(print_card, args.cards, Path(folder) / f"{name}-{round_number}"))
        sizes = {name: sum(path.stat().st_size for path in (Path(folder) / f"{name}-0").iterdir())
                 for name in results}
    rows = {name: [statistics.median(times[index] for times in runs) for index in (0, 1)]
            for name, runs in results.items()}
    print(f"printing {args.cards} cards, median of {args.rounds} alternating rounds")
    print(f"  {'printer':10s} {'ms a card':>10s} {'CPU ms':>8s} {'KB a card':>10s}")
    for name, (wall, cpu) in rows.items():
        print(f"  {name:10s} {wall:10.2f} {cpu:8.2f} {sizes[name] / 1024 / args.cards:10.1f}")
    print(f"  ratio (baseline / current) {rows['baseline'][0] / rows['current'][0]:.1f}x   "
          f"floor: {FLOOR_MS:g} ms a card ({'met' if rows['current'][0] < FLOOR_MS else 'MISSED'})")


if __name__ == "__main__":
    main()
