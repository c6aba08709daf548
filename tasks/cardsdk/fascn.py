"""The FASC-N (Federal Agency Smart Credential Number) in its 25-byte packed form.

TIG SCEPACS 2.3 / SP 800-73-4: 40 characters of 5 bits each (4 data bits, least significant
first, then an odd-parity bit): start sentinel, agency code (4 digits), system code (4),
credential number (6), credential series (1), individual credential issue (1), person identifier
(10), organisational category (1), organisational identifier (4), person/organisation association
(1), end sentinel, and a longitudinal redundancy character; a field separator after each of the
first five fields. A door system keys a card on agency + system + credential number + series + issue.
"""

from __future__ import annotations

from dataclasses import dataclass

START_SENTINEL, FIELD_SEPARATOR, END_SENTINEL = 0b1011, 0b1101, 0b1111
# Field name -> number of digits, in the order they are packed.
FIELDS = (
    ("agency_code", 4),
    ("system_code", 4),
    ("credential_number", 6),
    ("credential_series", 1),
    ("individual_credential_issue", 1),
    ("person_identifier", 10),
    ("organizational_category", 1),
    ("organizational_identifier", 4),
    ("association_category", 1),
)
# The first five fields each end with a field separator; the rest follow one another directly.
SEPARATED = 5
PACKED_LENGTH = 25


@dataclass(frozen=True)
class Fascn:
    """A FASC-N as its decimal fields (each a string of exactly its digits)."""

    agency_code: str
    system_code: str
    credential_number: str
    credential_series: str = "0"
    individual_credential_issue: str = "1"
    person_identifier: str = "0000000000"
    organizational_category: str = "1"
    organizational_identifier: str = "0000"
    association_category: str = "1"

    def __post_init__(self) -> None:
        """Refuse a field of the wrong length or with anything but digits."""
        for name, digits in FIELDS:
            value = getattr(self, name)
            if not (isinstance(value, str) and len(value) == digits and value.isascii() and value.isdigit()):
                raise ValueError(f"FASC-N {name.replace('_', ' ')} must be {digits} digits, not {value!r}")

    @property
    def digits(self) -> str:
        """The 32 digits in packing order (how the attempt records it, readable and searchable)."""
        return "".join(getattr(self, name) for name, _ in FIELDS)

    @property
    def readable(self) -> str:
        """The fields apart, as a person compares them with a door system's records:
        agency-system-credential-series-issue-person-category-organisation-association."""
        return "-".join(getattr(self, name) for name, _ in FIELDS)

    @classmethod
    def from_digits(cls, digits: str) -> Fascn:
        """The inverse of ``digits``."""
        if len(digits) != sum(size for _, size in FIELDS):
            raise ValueError(f"a FASC-N has 32 digits, not {len(digits)}")
        values, position = {}, 0
        for name, size in FIELDS:
            values[name] = digits[position:position + size]
            position += size
        return cls(**values)

    def pack(self) -> bytes:
        """The 25-byte packed BCD form that CHUID tag 30 and the certificates' SAN carry."""
        characters = [START_SENTINEL]
        for index, (name, _) in enumerate(FIELDS):
            characters += [int(digit) for digit in getattr(self, name)]
            if index < SEPARATED:
                characters.append(FIELD_SEPARATOR)
        characters.append(END_SENTINEL)
        lrc = 0
        for character in characters:
            lrc ^= character
        characters.append(lrc)
        bits = "".join(_five_bits(character) for character in characters)
        return int(bits, 2).to_bytes(PACKED_LENGTH, "big")

    @classmethod
    def unpack(cls, packed: bytes) -> Fascn:
        """Read a packed FASC-N, checking every parity bit, the sentinels and the LRC."""
        if len(packed) != PACKED_LENGTH:
            raise ValueError(f"a packed FASC-N is {PACKED_LENGTH} bytes, not {len(packed)}")
        bits = format(int.from_bytes(packed, "big"), f"0{PACKED_LENGTH * 8}b")
        characters = []
        for start in range(0, len(bits), 5):
            chunk = bits[start:start + 5]
            if chunk.count("1") % 2 != 1:
                raise ValueError(f"FASC-N character {start // 5 + 1} fails its parity check")
            characters.append(int(chunk[3::-1], 2))
        lrc = 0
        for character in characters[:-1]:
            lrc ^= character
        if lrc != characters[-1]:
            raise ValueError("FASC-N longitudinal redundancy check failed")
        if characters[0] != START_SENTINEL or characters[-2] != END_SENTINEL:
            raise ValueError("FASC-N sentinels missing")
        values, position = {}, 1
        for index, (name, size) in enumerate(FIELDS):
            field = characters[position:position + size]
            if any(character > 9 for character in field):
                raise ValueError(f"FASC-N {name.replace('_', ' ')} holds a non-digit")
            values[name] = "".join(str(character) for character in field)
            position += size
            if index < SEPARATED:
                if characters[position] != FIELD_SEPARATOR:
                    raise ValueError(f"FASC-N field separator missing after {name.replace('_', ' ')}")
                position += 1
        return cls(**values)


def _five_bits(character: int) -> str:
    """Four data bits, least significant first, then the bit that makes the count of ones odd."""
    data = format(character, "04b")[::-1]
    return data + ("0" if data.count("1") % 2 else "1")
