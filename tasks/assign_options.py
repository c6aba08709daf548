"""The assignment options (``TempCardsProcAssignOptions``): how many cards a holder may have at
once, and whether the PIN letter also carries the PUK. Deploy checks them like every option set."""

from __future__ import annotations

from typing import Any

from tasks.options import OptionField

ASSIGN_OPTIONS = "TempCardsProcAssignOptions"
DEFAULTS: dict[str, bool] = {"several_cards_per_holder": False, "pin_letter_shows_puk": False}

ASSIGN_OPTION_FIELDS = (
    OptionField("several_cards_per_holder", "A holder may have several active temporary cards", "boolean",
                "Off: one active temporary card per holder (withdraw it before assigning another)."),
    OptionField("pin_letter_shows_puk", "The PIN letter shows the PUK", "boolean",
                "On: the holder can unblock the card after wrong PINs without the service desk."),
)


def validate_assign_options(values: dict[str, Any]) -> list[tuple[str, str]]:
    """Every problem in a set of assignment options, as (option name, reason) pairs."""
    problems = [(name, f"unknown option; known options: {', '.join(DEFAULTS)}")
                for name in values if name not in DEFAULTS]
    problems += [(name, "missing; every option must be set") for name in DEFAULTS if name not in values]
    problems += [(name, f"must be True or False, not {values[name]!r}")
                 for name in DEFAULTS if name in values and not isinstance(values[name], bool)]
    return problems


def assign_options(options: dict[str, Any]) -> dict[str, Any]:
    """The assignment options of an instance's option snapshot (the defaults when not deployed)."""
    snapshot = options.get(ASSIGN_OPTIONS) or {}
    return {**DEFAULTS, **(snapshot.get("values") or {})}
