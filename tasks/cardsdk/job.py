"""What the Card SDK is asked to produce, and what it answers."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path


class CardSdkError(Exception):
    """Production of one card failed; ``str(error)`` is the reason, in the operator's words."""


@dataclass(frozen=True)
class CardJob:
    """One physical card to print and, when ``encode`` is set, to encode."""

    card_id: int
    card_number: str
    organisation: str
    valid_until: date
    # Opaque tag ("order-3/card-17/attempt-2") that custody and CA records carry, so a spoiled
    # attempt's certificates can be revoked without the SDK knowing what an order is.
    attempt_ref: str
    spool_dir: Path
    encode: bool = True
    certificates: tuple[str, ...] = ("PIV Authentication",)
    pin_length: int = 6
    puk_length: int = 8
    validity_days: int = 14
    # The identity of this physical card (tasks.cardsdk.card_identity), fixed when its attempt is
    # recorded: a random GUID and the 25-byte packed FASC-N, for the CHUID, CCC and certificates.
    # None when no FASC-N could be made; encoding then refuses the card with ``identity_problem``.
    card_uuid: uuid.UUID = field(default_factory=uuid.uuid4)
    fascn: bytes | None = None
    identity_problem: str | None = None
    # Run with the session of every transaction that records a certificate for this attempt;
    # raises CardSdkError when the attempt may no longer record anything (its claim lapsed).
    guard: Callable[[object], None] | None = field(default=None, compare=False, repr=False)


@dataclass
class EncodeResult:
    """What the encoder left on the chip (never the PIN or PUK: those go to custody)."""

    chip_serial: str
    certificate_serials: list[str] = field(default_factory=list)


@dataclass
class ProductionResult:
    """A produced card: its physical serial and the print files (front/back PNG, PDF)."""

    physical_serial: str
    files: list[str] = field(default_factory=list)
    certificate_serials: list[str] = field(default_factory=list)
