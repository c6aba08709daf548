"""The temporary-card options (``TempCardsScriptOptions``) and the rules their values must obey.

The admin edits the option script; deploy refuses values the card profile cannot hold (PIV:
a 6 to 8 digit PIN and an 8 character PUK), so a bad edit never reaches an operator. Card
Authentication (9E) is issued on every encoded card, as FIPS 201-3 requires: ``certificates``
chooses the others, and a script that tries to turn it off is refused with that reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TEMP_CARDS_OPTIONS = "TempCardsScriptOptions"

CERTIFICATE_TYPES = ("PIV Authentication", "Digital Signature", "Key Management", "Card Authentication")
CARD_AUTHENTICATION = "Card Authentication"
# What the admin chooses; Card Authentication comes with every encoded card (listing it is allowed
# and changes nothing).
CHOSEN_CERTIFICATE_TYPES = tuple(name for name in CERTIFICATE_TYPES if name != CARD_AUTHENTICATION)
# An option a script may set only to True: it says what happens anyway.
CARD_AUTHENTICATION_OPTION = "card_authentication"
CARD_AUTHENTICATION_MANDATORY = (
    "cannot be turned off: FIPS 201-3 makes the Card Authentication key and certificate (9E) "
    "mandatory on every PIV card, so it is issued whenever encode_card = True; remove this line")

# Option name -> the Python type its value must have. bool is checked apart from int below
# because True is an int to isinstance, and "pin_length = True" must not pass as 1.
OPTION_TYPES: dict[str, type] = {
    "pin_length": int,
    "puk_length": int,
    "encode_card": bool,
    "certificates": list,
    "validity_days": int,
}

PIN_LENGTHS = range(6, 9)  # PIV (SP 800-73): the PIN is 6 to 8 digits
PUK_LENGTH = 8  # PIV: the PUK is exactly 8 characters
VALIDITY_DAYS = range(1, 367)


@dataclass(frozen=True)
class OptionField:
    """How the admin's options form shows one option: label, kind and limits (what the validator
    below enforces, said up front)."""

    name: str
    label: str
    kind: str  # integer | boolean | choices
    help: str
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()


# The labels of the reference product; the order of its options page.
TEMP_CARDS_OPTION_FIELDS = (
    OptionField("pin_length", "PIN length", "integer", "Digits of the generated PIN (PIV: 6 to 8).",
                PIN_LENGTHS.start, PIN_LENGTHS.stop - 1),
    OptionField("puk_length", "PUK length", "integer", "Characters of the generated PUK (PIV: exactly 8).",
                PUK_LENGTH, PUK_LENGTH),
    OptionField("encode_card", "Encode the temporary card", "boolean",
                "Encode the chip (PIN, PUK, certificates); off = only print."),
    OptionField("certificates", "Select certificates to be issued", "choices",
                "Only valid when the card is encoded. Card Authentication is always issued on an "
                "encoded card (FIPS 201-3).", choices=CHOSEN_CERTIFICATE_TYPES),
    OptionField("validity_days", "Validity days", "integer",
                "How long the card and its certificates are valid.",
                VALIDITY_DAYS.start, VALIDITY_DAYS.stop - 1),
)


def validate_temp_card_options(values: dict[str, Any]) -> list[tuple[str, str]]:
    """Every problem in a set of temporary-card options, as (option name, reason) pairs."""
    problems = [(name, f"unknown option; known options: {', '.join(OPTION_TYPES)}")
                for name in values if name not in OPTION_TYPES and name != CARD_AUTHENTICATION_OPTION]
    if values.get(CARD_AUTHENTICATION_OPTION, True) is not True:
        problems.append((CARD_AUTHENTICATION_OPTION, CARD_AUTHENTICATION_MANDATORY))
    problems += [(name, "missing; every option must be set") for name in OPTION_TYPES if name not in values]
    typed = {}
    for name, expected in OPTION_TYPES.items():
        if name not in values:
            continue
        value = values[name]
        if _has_type(value, expected):
            typed[name] = value
        else:
            problems.append((name, f"must be {_type_words(expected)}, not {value!r}"))
    problems += _check_ranges(typed)
    return problems


def _has_type(value: Any, expected: type) -> bool:
    """isinstance, except that a bool never counts as an int."""
    if expected is not bool and isinstance(value, bool):
        return False
    return isinstance(value, expected)


def _type_words(expected: type) -> str:
    """How an error message names a type."""
    return {int: "a whole number", bool: "True or False", list: "a list"}[expected]


def _check_ranges(typed: dict[str, Any]) -> list[tuple[str, str]]:
    """Range and consistency rules, for the options that already have the right type."""
    problems = []
    if "pin_length" in typed and typed["pin_length"] not in PIN_LENGTHS:
        problems.append(("pin_length", f"must be 6 to 8 (PIV needs a 6 to 8 digit PIN), "
                                       f"not {typed['pin_length']}"))
    if "puk_length" in typed and typed["puk_length"] != PUK_LENGTH:
        problems.append(("puk_length", f"must be 8 (a PIV PUK is 8 characters), not {typed['puk_length']}"))
    if "validity_days" in typed and typed["validity_days"] not in VALIDITY_DAYS:
        problems.append(("validity_days", f"must be 1 to 366 days, not {typed['validity_days']}"))
    if "certificates" in typed:
        problems += _check_certificates(typed["certificates"], typed.get("encode_card"))
    return problems


def _check_certificates(certificates: list, encode_card: bool | None) -> list[tuple[str, str]]:
    """Certificates are distinct known types, and only asked for when the card is encoded."""
    problems = []
    unknown = [item for item in certificates if item not in CERTIFICATE_TYPES]
    if unknown:
        problems.append(("certificates", f"unknown certificate types {unknown!r}; "
                                         f"choose from {', '.join(CERTIFICATE_TYPES)}"))
    names = [item for item in certificates if isinstance(item, str)]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        problems.append(("certificates", f"listed more than once: {duplicates!r}"))
    if certificates and encode_card is False:
        problems.append(("certificates", "only valid when encoding is on (encode_card = True); "
                                         "use certificates = [] to only print"))
    return problems
