"""APDU framing, BER-TLV and status-word mapping."""

from __future__ import annotations

import pytest

from tasks.cardsdk.piv.apdu import (
    Command,
    check_sw,
    exchange,
    parse_command,
    parse_tlv,
    tlv,
)
from tasks.cardsdk.piv.errors import MalformedResponseError, PinBlockedError, StatusWordError, WrongPinError


@pytest.mark.parametrize(
    "length,header", [(0, "00"), (127, "7f"), (128, "8180"), (256, "820100"), (70000, "83011170")]
)
def test_tlv_lengths_round_trip(length, header):
    encoded = tlv(0x53, bytes(length))
    assert encoded[1:].hex().startswith(header)
    assert parse_tlv(encoded) == [(0x53, bytes(length))]


def test_multi_byte_tags_and_padding():
    data = tlv(0x7F49, tlv(0x86, b"\x04" * 3)) + b"\xff\xff" + tlv(0x5F2F, b"\x40\x00")
    assert parse_tlv(data) == [(0x7F49, bytes.fromhex("8603040404")), (0x5F2F, b"\x40\x00")]


@pytest.mark.parametrize("garbage", ["5305aabb", "53", "5f", "538401000000", "7f49"])
def test_malformed_tlv_is_reported_in_operator_words(garbage):
    with pytest.raises(MalformedResponseError, match="malformed TLV"):
        parse_tlv(bytes.fromhex(garbage))


def test_parse_short_and_extended_commands():
    assert parse_command(bytes.fromhex("00A4040002A00000")) == Command(0, 0xA4, 4, 0, b"\xa0\x00", 256)
    assert parse_command(bytes.fromhex("00CB3FFF000003")).le == 3
    extended = parse_command(bytes.fromhex("00DB3FFF000003aabbcc0000"))
    assert extended.data == b"\xaa\xbb\xcc" and extended.le == 65536
    with pytest.raises(ValueError):
        parse_command(bytes.fromhex("00DB3FFF05aabb"))


def test_exchange_follows_61xx_and_6cxx():
    answers = {
        bytes.fromhex("00CA000000"): bytes.fromhex("6C04"),
        bytes.fromhex("00CA000004"): bytes.fromhex("01026102"),
        bytes.fromhex("00C0000002"): bytes.fromhex("03049000"),
    }
    assert exchange(answers.__getitem__, Command(0, 0xCA, 0, 0, le=256)) == (bytes([1, 2, 3, 4]), 0x9000)


def test_exchange_stops_a_chain_on_error():
    sent = []

    def refuse(apdu: bytes) -> bytes:
        sent.append(apdu)
        return bytes.fromhex("6982")

    assert exchange(refuse, Command(0, 0xDB, 0x3F, 0xFF, bytes(600))) == (b"", 0x6982)
    assert len(sent) == 1 and sent[0][0] == 0x10


def test_status_words_map_to_errors():
    check_sw(0x9000, "x")
    with pytest.raises(WrongPinError) as error:
        check_sw(0x63C2, "Verifying the PIN")
    assert error.value.tries_left == 2
    with pytest.raises(PinBlockedError, match="blocked"):
        check_sw(0x6983, "Verifying the PIN")
    with pytest.raises(StatusWordError, match="6A80 \\(incorrect data"):
        check_sw(0x6A80, "Writing")
    with pytest.raises(MalformedResponseError):
        exchange(lambda apdu: b"\x90", Command(0, 0xCA, 0, 0))
