"""Card profiles as data: what a blank card of a given stock looks like and how to personalise it.

A profile (a JSON file in ``card_profiles/``, or any JSON file named in the configuration) holds
what differs between card stocks: factory secrets, PIN/PUK lengths and retry counts, how the
management key is proven and changed, and the key algorithm per certificate type. The encoder and
the virtual card both take their behaviour from it, so new stock is configuration, not code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

# NIST SP 800-78-4 algorithm identifiers.
ALGORITHMS = {"3DES": 0x03, "AES128": 0x08, "AES192": 0x0A, "AES256": 0x0C, "RSA2048": 0x07, "P256": 0x11}
MANAGEMENT_KEY_LENGTHS = {"3DES": 24, "AES128": 16, "AES192": 24, "AES256": 32}

# Certificate type -> key reference (slot) and the data object holding its certificate.
SLOTS = {
    "PIV Authentication": {"slot": 0x9A, "object": 0x5FC105},
    "Digital Signature": {"slot": 0x9C, "object": 0x5FC10A},
    "Key Management": {"slot": 0x9D, "object": 0x5FC10B},
    "Card Authentication": {"slot": 0x9E, "object": 0x5FC101},
}
PIV_AID = bytes.fromhex("A000000308000010000100")
OBJECT_CHUID = 0x5FC102
OBJECT_CCC = 0x5FC107
OBJECT_DISCOVERY = 0x7E

# The well-known default management key of PIV test stock and YubiKeys (not a secret).
DEFAULT_MANAGEMENT_KEY = "010203040506070801020304050607080102030405060708"

# How a stock's management key is replaced: the YubiKey command (INS FF), or not at all (the
# maker sets a per-card key, and custody keeps that one). How the terminal proves the key:
# mutual (both sides challenge) or external (one way, the card challenges).
MANAGEMENT_KEY_CHANGES = ("yubikey", "none")
AUTHENTICATION_MODES = ("mutual", "external")
KEY_ALGORITHMS = ("RSA2048", "P256")
PROFILE_FOLDER = Path(__file__).with_name("card_profiles")
PROFILES: dict[str, dict] = {path.stem: json.loads(path.read_text())
                             for path in sorted(PROFILE_FOLDER.glob("*.json"))}
DEFAULT_PROFILE = "piv-3des-p256"


@dataclass(frozen=True)
class CardProfile:
    """A validated profile: factory secrets, limits and per-type algorithms."""

    name: str
    management_key: bytes
    management_algorithm: str
    factory_pin: str
    factory_puk: str
    pin_length: tuple[int, int]
    puk_length: tuple[int, int]
    slot_algorithms: dict[str, str]
    management_key_change: str = "yubikey"
    authentication: str = "mutual"
    pin_retries: int = 3
    puk_retries: int = 3

    def algorithm_for(self, certificate_type: str) -> str:
        """The key algorithm for ``certificate_type``; ValueError for a type this stock lacks."""
        try:
            return self.slot_algorithms[certificate_type]
        except KeyError:
            raise ValueError(f"card profile {self.name!r} has no slot for {certificate_type!r}") from None


def from_dict(name: str, data: dict) -> CardProfile:
    """Build and check a profile from plain data (dict or parsed JSON); ValueError says what is wrong."""
    try:
        return _checked(name, data)
    except KeyError as missing:
        raise ValueError(f"card profile {name!r}: {missing.args[0]} is missing") from None
    except (TypeError, ValueError) as error:
        if str(error).startswith("card profile"):
            raise
        raise ValueError(f"card profile {name!r}: {error}") from None


def _checked(name: str, data: dict) -> CardProfile:
    """``from_dict`` proper; raises KeyError, TypeError or ValueError on bad data."""
    where = f"card profile {name!r}"
    algorithm = data["management_algorithm"]
    key = bytes.fromhex(data["management_key"])
    if MANAGEMENT_KEY_LENGTHS.get(algorithm) != len(key):
        raise ValueError(f"{where}: management key does not fit {algorithm}")
    slot_algorithms = dict(data["slot_algorithms"])
    for cert_type, alg in slot_algorithms.items():
        if cert_type not in SLOTS or alg not in KEY_ALGORITHMS:
            raise ValueError(f"{where}: unknown slot {cert_type!r} or algorithm {alg!r}")
    if "Card Authentication" not in slot_algorithms:
        raise ValueError(f"{where}: PIV cards must hold a Card Authentication key (FIPS 201-3)")
    change = data.get("management_key_change", "yubikey")
    if change not in MANAGEMENT_KEY_CHANGES:
        raise ValueError(f"{where}: management_key_change must be one of {', '.join(MANAGEMENT_KEY_CHANGES)}")
    mode = data.get("authentication", "mutual")
    if mode not in AUTHENTICATION_MODES:
        raise ValueError(f"{where}: authentication must be one of {', '.join(AUTHENTICATION_MODES)}")
    retries = {}
    for field in ("pin_retries", "puk_retries"):
        value = data.get(field, 3)
        # The card reports tries left in one nibble (63Cx).
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 15:
            raise ValueError(f"{where}: {field} must be a whole number from 1 to 15")
        retries[field] = value
    return CardProfile(
        name=name,
        management_key=key,
        management_algorithm=algorithm,
        factory_pin=data["factory_pin"],
        factory_puk=data["factory_puk"],
        pin_length=tuple(data["pin_length"]),
        puk_length=tuple(data["puk_length"]),
        slot_algorithms=slot_algorithms,
        management_key_change=change,
        authentication=mode,
        **retries,
    )


def get(name: str) -> CardProfile:
    """The built-in profile ``name``, or the profile in the JSON file ``name`` names (another card
    type is configuration, not code); ValueError lists the known names otherwise."""
    if name.endswith(".json"):
        return load(Path(name))
    if name not in PROFILES:
        raise ValueError(f"unknown card profile {name!r}; known: {', '.join(sorted(PROFILES))}")
    return from_dict(name, PROFILES[name])


def load(path: Path) -> CardProfile:
    """A profile from a JSON file (same keys as the built-in ones); its name is the file stem."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"card profile file {path.name}: {error}") from None
    if not isinstance(data, dict):
        raise ValueError(f"card profile file {path.name}: expected a JSON object")
    return from_dict(path.stem, data)
