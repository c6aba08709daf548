"""A production station: its printer and, when it has one, its encoder, used as one machine."""

from __future__ import annotations

import time
from typing import Protocol

from tasks.cardsdk.drawing import Drawers
from tasks.cardsdk.job import CardJob, CardSdkError, EncodeResult, ProductionResult
from tasks.cardsdk.printer import SpoolPrinter


class Encoder(Protocol):
    """Personalises the chip of the card in the station (see tasks.cardsdk.encoder)."""

    def encode(self, job: CardJob) -> EncodeResult:
        """Encode one card or raise CardSdkError."""

    def revoke_attempt(self, attempt_ref: str, reason: str) -> int:
        """Revoke the certificates issued for one production attempt."""


class Station:
    """Encodes (when the options say so), then prints; either failing fails the card."""

    def __init__(self, printer: SpoolPrinter, encoder: Encoder | None = None, name: str = "virtual",
                 unavailable: str | None = None, device_seconds: float = 0.0):
        self.printer = printer
        self._drawers = Drawers(printer.stage, printer.discard, apart=getattr(printer, "draws_apart", True),
                                ahead=getattr(printer, "make_ahead", None))
        self.encoder = encoder
        self.name = name
        # Simulated time the devices take a card (benchmarks, tests of long orders).
        self.device_seconds = device_seconds
        # Why this station has no encoder (e.g. the CA is not set up), told to the operator.
        self.unavailable = unavailable

    def warm_up(self) -> None:
        """Get ready for the first card (its drawing process), as a host does when it starts."""
        self._drawers.warm()

    def produce(self, job: CardJob, attempt_label: str) -> ProductionResult:
        """Produce one physical card; raises CardSdkError with the operator-facing reason.

        The card is drawn and staged in another process while its chip is encoded, and printed
        only once the chip took its data: a card whose encoding failed is never printed.
        """
        encoded = None
        if self.device_seconds:
            time.sleep(self.device_seconds)
        if job.encode and self.encoder is None:
            raise CardSdkError(self.unavailable or f"Station {self.name} has no encoder; turn "
                               "encoding off or use a station with a card reader.")
        drawing = self._drawers.start(job, attempt_label)
        try:
            if job.encode:
                encoded = self.encoder.encode(job)
        except BaseException:
            drawing.discard()
            raise
        try:
            staged = drawing.result()
            try:
                printed = self.printer.spool(job, staged)
            except BaseException:
                self.printer.discard(staged)
                raise
        except CardSdkError:
            if encoded is not None:
                self.spoil(job.attempt_ref, "printing failed after encoding")
            raise
        return ProductionResult(
            physical_serial=encoded.chip_serial if encoded else printed.serial,
            files=[str(printed.front_png), str(printed.back_png), str(printed.pdf)],
            certificate_serials=list(encoded.certificate_serials) if encoded else [],
        )

    def spoil(self, attempt_ref: str, reason: str) -> int:
        """A physical card is waste: revoke what was issued for it. Returns certificates revoked."""
        return self.encoder.revoke_attempt(attempt_ref, reason) if self.encoder else 0
