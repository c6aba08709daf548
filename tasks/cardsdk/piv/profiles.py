"""Card profiles as data: what a blank card of a given stock looks like and how to personalise it.

A profile names the factory secrets of the card stock, the PIN/PUK rules, and the key algorithm
per certificate type. Add stock by adding a dict entry (or a JSON file loaded with ``load``).
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

# What every PIV test stock here shares: factory PIN and PUK, and the PIV length rules.
_PIV_STOCK = {
    "management_key": DEFAULT_MANAGEMENT_KEY,
    "management_algorithm": "3DES",
    "factory_pin": "123456",
    "factory_puk": "12345678",
    "pin_length": [6, 8],
    "puk_length": [8, 8],
    "slot_algorithms": dict.fromkeys(
        ("PIV Authentication", "Digital Signature", "Key Management", "Card Authentication"), "P256"),
}
_TWO_SLOTS = {"PIV Authentication": "P256", "Digital Signature": "P256"}

PROFILES: dict[str, dict] = {
    "piv-3des-p256": _PIV_STOCK,
    "piv-3des-rsa": {**_PIV_STOCK, "slot_algorithms": {
        "PIV Authentication": "RSA2048", "Digital Signature": "RSA2048", "Key Management": "RSA2048",
        "Card Authentication": "P256"}},
    # YubiKey 5.7+ ship with the same default key, as AES-192.
    "piv-aes192-p256": {**_PIV_STOCK, "management_algorithm": "AES192"},
    "piv-aes128-p256": {**_PIV_STOCK, "management_algorithm": "AES128", "slot_algorithms": _TWO_SLOTS,
                        "management_key": "000102030405060708090a0b0c0d0e0f"},
    "piv-aes256-p256": {**_PIV_STOCK, "management_algorithm": "AES256", "slot_algorithms": _TWO_SLOTS,
                        "management_key": "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"},
}
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

    def algorithm_for(self, certificate_type: str) -> str:
        """The key algorithm for ``certificate_type``; ValueError for a type this stock lacks."""
        try:
            return self.slot_algorithms[certificate_type]
        except KeyError:
            raise ValueError(f"card profile {self.name!r} has no slot for {certificate_type!r}") from None


def from_dict(name: str, data: dict) -> CardProfile:
    """Build and check a profile from plain data (dict or parsed JSON)."""
    algorithm = data["management_algorithm"]
    key = bytes.fromhex(data["management_key"])
    if MANAGEMENT_KEY_LENGTHS.get(algorithm) != len(key):
        raise ValueError(f"profile {name!r}: management key does not fit {algorithm}")
    slot_algorithms = dict(data["slot_algorithms"])
    for cert_type, alg in slot_algorithms.items():
        if cert_type not in SLOTS or alg not in ("RSA2048", "P256"):
            raise ValueError(f"profile {name!r}: unknown slot {cert_type!r} or algorithm {alg!r}")
    return CardProfile(
        name=name,
        management_key=key,
        management_algorithm=algorithm,
        factory_pin=data["factory_pin"],
        factory_puk=data["factory_puk"],
        pin_length=tuple(data["pin_length"]),
        puk_length=tuple(data["puk_length"]),
        slot_algorithms=slot_algorithms,
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
    return from_dict(path.stem, json.loads(path.read_text()))
