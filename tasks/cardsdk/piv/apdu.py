"""ISO 7816-4 command/response APDUs and BER-TLV, as PIV (NIST SP 800-73-4 part 2) uses them.

``exchange`` is the one place that knows about command chaining (CLA 10 for data longer than
255 bytes) and response chaining (61xx answered with GET RESPONSE), so callers see whole
messages and a status word.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tasks.cardsdk.piv.errors import (
    MalformedResponseError,
    PinBlockedError,
    StatusWordError,
    WrongPinError,
)

Transmit = Callable[[bytes], bytes]

SW_OK = 0x9000
MAX_SHORT_DATA = 255
# An answer larger than this is an error of the card (or garbage), never a PIV object.
MAX_RESPONSE = 65535

SW_MEANINGS = {
    0x6700: "wrong length",
    0x6882: "secure messaging not supported",
    0x6883: "last command of a chain expected",
    0x6982: "security status not satisfied",
    0x6983: "authentication method blocked",
    0x6985: "conditions of use not satisfied",
    0x6A80: "incorrect data in the command",
    0x6A81: "function not supported",
    0x6A82: "file or application not found",
    0x6A84: "not enough memory on the card",
    0x6A86: "incorrect P1/P2",
    0x6A88: "referenced data not found",
    0x6D00: "instruction not supported",
    0x6E00: "class not supported",
}


@dataclass(frozen=True)
class Command:
    """One short command APDU; ``le`` None means no Le byte (case 1/3)."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None

    def to_bytes(self) -> bytes:
        """Encode as a short APDU (data at most 255 bytes, Le 256 written as 00)."""
        if len(self.data) > MAX_SHORT_DATA:
            raise ValueError("short APDU data is limited to 255 bytes; use exchange() to chain")
        out = bytes([self.cla, self.ins, self.p1, self.p2])
        if self.data:
            out += bytes([len(self.data)]) + self.data
        if self.le is not None:
            out += bytes([self.le & 0xFF])
        return out


def parse_command(raw: bytes) -> Command:
    """Decode a short or extended command APDU; raises ValueError when the lengths do not add up."""
    if len(raw) < 4:
        raise ValueError("command APDU shorter than its header")
    cla, ins, p1, p2 = raw[:4]
    body = raw[4:]
    if not body:
        return Command(cla, ins, p1, p2)
    if len(body) == 1:
        return Command(cla, ins, p1, p2, le=body[0] or 256)
    if body[0] == 0 and len(body) >= 3:
        # Extended length: 00 Lc1 Lc2 data [Le1 Le2], or 00 Le1 Le2 alone.
        if len(body) == 3:
            return Command(cla, ins, p1, p2, le=int.from_bytes(body[1:3], "big") or 65536)
        lc = int.from_bytes(body[1:3], "big")
        data, rest = body[3 : 3 + lc], body[3 + lc :]
        if len(data) != lc or len(rest) not in (0, 2):
            raise ValueError("extended APDU length mismatch")
        le = (int.from_bytes(rest, "big") or 65536) if rest else None
        return Command(cla, ins, p1, p2, data, le)
    lc = body[0]
    data, rest = body[1 : 1 + lc], body[1 + lc :]
    if len(data) != lc or len(rest) > 1:
        raise ValueError("short APDU length mismatch")
    return Command(cla, ins, p1, p2, data, (rest[0] or 256) if rest else None)


def split_response(raw: bytes) -> tuple[bytes, int]:
    """Split a response APDU into data and SW1SW2."""
    if len(raw) < 2:
        raise MalformedResponseError(
            "The card gave an answer too short to be valid. Check the card is seated and retry."
        )
    return raw[:-2], int.from_bytes(raw[-2:], "big")


def exchange(transmit: Transmit, command: Command) -> tuple[bytes, int]:
    """Send ``command`` with chaining as needed and collect a chained answer; returns (data, sw)."""
    data = command.data
    chunks = [data[i : i + MAX_SHORT_DATA] for i in range(0, len(data), MAX_SHORT_DATA)] or [b""]
    for chunk in chunks[:-1]:
        part = Command(command.cla | 0x10, command.ins, command.p1, command.p2, chunk)
        _, sw = split_response(transmit(part.to_bytes()))
        if sw != SW_OK:
            return b"", sw
    last = Command(command.cla, command.ins, command.p1, command.p2, chunks[-1], command.le)
    body, sw = split_response(transmit(last.to_bytes()))
    answer = bytearray(body)
    while sw >> 8 in (0x61, 0x6C):
        if sw >> 8 == 0x6C:
            # Wrong Le: the card tells the right one; resend the same command with it.
            last = Command(last.cla, last.ins, last.p1, last.p2, last.data, sw & 0xFF)
            body, sw = split_response(transmit(last.to_bytes()))
        else:
            body, sw = split_response(transmit(Command(0x00, 0xC0, 0, 0, le=sw & 0xFF).to_bytes()))
        answer += body
        if len(answer) > MAX_RESPONSE:
            raise MalformedResponseError("The card sent an endless answer. Remove the card and retry.")
    return bytes(answer), sw


def check_sw(sw: int, action: str) -> None:
    """Raise the error an operator understands for a failed ``action``; return on 9000."""
    if sw == SW_OK:
        return
    if sw == 0x6983:
        raise PinBlockedError(f"{action}: the PIN or PUK is blocked on this card. Set the card aside.")
    if sw & 0xFFF0 == 0x63C0:
        tries = sw & 0x0F
        raise WrongPinError(f"{action}: the card refused the PIN or PUK ({tries} tries left).", tries)
    meaning = SW_MEANINGS.get(sw, "unknown status")
    raise StatusWordError(f"{action}: the card answered {sw:04X} ({meaning}).", sw)


def encode_length(length: int) -> bytes:
    """BER definite length: short form below 128, else 81/82/83 + big-endian length."""
    if length < 0x80:
        return bytes([length])
    size = (length.bit_length() + 7) // 8
    return bytes([0x80 | size]) + length.to_bytes(size, "big")


def tlv(tag: int, value: bytes) -> bytes:
    """One BER-TLV; ``tag`` is the whole tag as an int (0x53, 0x5FC1, 0x7F49)."""
    tag_bytes = tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big")
    return tag_bytes + encode_length(len(value)) + value


def parse_tlv(data: bytes) -> list[tuple[int, bytes]]:
    """Parse a sequence of BER-TLVs into (tag, value) pairs; raises MalformedResponseError."""
    items = []
    pos = 0
    try:
        while pos < len(data):
            if data[pos] in (0x00, 0xFF):
                # Padding between objects is allowed by ISO 7816-4.
                pos += 1
                continue
            tag = data[pos]
            pos += 1
            if tag & 0x1F == 0x1F:
                while True:
                    tag = (tag << 8) | data[pos]
                    pos += 1
                    if not data[pos - 1] & 0x80:
                        break
            length = data[pos]
            pos += 1
            if length & 0x80:
                size = length & 0x7F
                if size == 0 or size > 3:
                    raise IndexError
                length = int.from_bytes(data[pos : pos + size], "big")
                pos += size
            if pos + length > len(data):
                raise IndexError
            items.append((tag, data[pos : pos + length]))
            pos += length
    except IndexError:
        raise MalformedResponseError(
            "The card sent data in a form it should not (malformed TLV). Set the card aside."
        ) from None
    return items


def find_tlv(data: bytes, tag: int) -> bytes | None:
    """Value of the first ``tag`` at the top level of ``data``, or None."""
    for found, value in parse_tlv(data):
        if found == tag:
            return value
    return None


def require_tlv(data: bytes, tag: int, what: str) -> bytes:
    """Value of ``tag`` in ``data``; a missing tag is a malformed answer about ``what``."""
    value = find_tlv(data, tag)
    if value is None:
        raise MalformedResponseError(f"The card's answer to {what} lacks tag {tag:X}. Set the card aside.")
    return value
