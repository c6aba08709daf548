"""The virtual PIV card answers the SP 800-73-4 card edge the way clients expect."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from tasks.cardsdk.piv.apdu import Command, exchange
from tasks.cardsdk.piv.client import PivClient, parse_apt
from tasks.cardsdk.piv.errors import PinBlockedError, StatusWordError, WrongFactoryKeyError, WrongPinError
from tasks.cardsdk.piv.profiles import DEFAULT_MANAGEMENT_KEY
from tasks.cardsdk.piv.virtual_card import VirtualPivCard

FACTORY_KEY = bytes.fromhex(DEFAULT_MANAGEMENT_KEY)


@pytest.fixture
def card():
    """A blank virtual card."""
    return VirtualPivCard()


@pytest.fixture
def client(card):
    """A client with the PIV application selected."""
    client = PivClient(card.transmit)
    client.select()
    return client


def sw(card: VirtualPivCard, apdu: str) -> int:
    """Status word of one raw APDU given in hex."""
    return int.from_bytes(card.transmit(bytes.fromhex(apdu))[-2:], "big")


def test_foreign_aid_is_not_found_and_piv_select_answers_its_template(card):
    assert sw(card, "00A4040007A0000000031010") == 0x6A82
    answer = card.transmit(bytes.fromhex("00A4040009A00000030800001000") + b"\x00")
    assert answer[-2:] == b"\x90\x00" and answer[0] == 0x61
    assert 0x11 in parse_apt(answer[:-2]) and 0x07 in parse_apt(answer[:-2])


def test_commands_before_select_and_malformed_apdus_are_refused(card):
    assert sw(card, "00CB3FFF055C035FC10200") == 0x6985
    assert sw(card, "00A4") == 0x6700
    assert sw(card, "00A404000AA0000003") == 0x6700


def test_unknown_instruction_and_class(card, client):
    assert sw(card, "00EE000000") == 0x6D00
    assert sw(card, "80CB3FFF055C035FC10200") == 0x6E00


def test_key_generation_and_put_data_need_the_management_key(card, client):
    assert sw(card, "0047009A05AC03800111") == 0x6982
    assert sw(card, "00DB3FFF075C035FC1025300") == 0x6982
    client.authenticate(FACTORY_KEY, "3DES")
    assert sw(card, "00DB3FFF075C035FC1025300") == 0x9000


def test_wrong_management_key_is_refused_both_ways(client):
    wrong = bytes(24)
    with pytest.raises(WrongFactoryKeyError):
        client.authenticate(wrong, "3DES")
    with pytest.raises(WrongFactoryKeyError):
        client.authenticate(wrong, "3DES", mutual=False)
    client.authenticate(FACTORY_KEY, "3DES", mutual=False)


@pytest.mark.parametrize("algorithm,length", [("AES128", 16), ("AES192", 24), ("AES256", 32)])
def test_aes_management_keys(algorithm, length):
    card = VirtualPivCard(management_algorithm=algorithm, management_key=bytes(range(length)))
    client = PivClient(card.transmit)
    client.select()
    client.authenticate(bytes(range(length)), algorithm)
    client.authenticate(bytes(range(length)), algorithm, mutual=False)
    with pytest.raises(StatusWordError) as error:
        client.authenticate(bytes(24), "3DES")
    assert error.value.sw == 0x6A86


def test_pin_retry_counter_counts_down_blocks_and_puk_unblocks(card, client):
    assert client.pin_tries_left() == 3
    with pytest.raises(WrongPinError) as error:
        client.verify_pin("000000")
    assert error.value.tries_left == 2
    assert sw(card, "0020008008303030303030FFFF") == 0x63C1
    with pytest.raises(PinBlockedError):
        client.verify_pin("000000")
    with pytest.raises(PinBlockedError):
        client.verify_pin("123456")
    assert client.pin_tries_left() == 0
    assert sw(card, "002C0080103132333435363738" + "313131313131FFFF") == 0x9000
    client.verify_pin("111111")
    assert client.pin_tries_left() is None


def test_change_pin_and_puk_check_format_and_old_value(card, client):
    client.change_pin("123456", "24681357")
    client.verify_pin("24681357")
    with pytest.raises(StatusWordError) as error:
        client.change_pin("24681357", "12ab")
    assert error.value.sw == 0x6A80
    with pytest.raises(WrongPinError):
        client.change_puk("00000000", "87654321")
    client.change_puk("12345678", "87654321")
    assert card.puk == b"87654321"


def test_put_data_chains_and_get_data_answers_61xx(card, client):
    client.authenticate(FACTORY_KEY, "3DES")
    content = bytes(range(256)) * 4
    sent = []

    def recording(apdu: bytes) -> bytes:
        sent.append(apdu)
        return card.transmit(apdu)

    chained = PivClient(recording)
    chained.put_object(0x5FC105, content)
    assert [apdu[0] for apdu in sent] == [0x10, 0x10, 0x10, 0x10, 0x00]
    sent.clear()
    assert chained.get_object(0x5FC105) == content
    assert [apdu[1] for apdu in sent] == [0xCB, 0xC0, 0xC0, 0xC0, 0xC0]


def test_get_response_without_pending_data_and_broken_chain(card, client):
    assert sw(card, "00C0000000") == 0x6985
    assert sw(card, "10DB3FFF035C0101") == 0x9000
    assert sw(card, "00CB3FFF035C017E00") == 0x6883


def test_generated_keys_sign_through_general_authenticate(card, client):
    client.authenticate(FACTORY_KEY, "3DES")
    ec_key = client.generate_key(0x9C, "P256")
    rsa_key = client.generate_key(0x9A, "RSA2048")
    digest = hashlib.sha256(b"hello").digest()
    with pytest.raises(StatusWordError) as error:
        client.sign(0x9C, "P256", digest)
    assert error.value.sw == 0x6982
    client.verify_pin("123456")
    ec_key.verify(client.sign(0x9C, "P256", digest), digest, ec.ECDSA(Prehashed(hashes.SHA256())))
    # PKCS#1 v1.5 block for SHA-256, built by hand as a PIV middleware does.
    info = bytes.fromhex("3031300d060960864801650304020105000420") + digest
    block = b"\x00\x01" + b"\xff" * (256 - len(info) - 3) + b"\x00" + info
    rsa_key.verify(client.sign(0x9A, "RSA2048", block), b"hello", padding.PKCS1v15(), hashes.SHA256())


def test_state_survives_json_round_trip(card, client):
    client.authenticate(FACTORY_KEY, "3DES")
    public = client.generate_key(0x9E, "P256")
    client.put_object(0x5FC102, b"\x34\x10" + bytes(16))
    client.change_pin("123456", "654321")
    copy = VirtualPivCard.from_json(card.to_json())
    other = PivClient(copy.transmit)
    other.select()
    assert copy.serial == card.serial
    assert other.get_object(0x5FC102) == b"\x34\x10" + bytes(16)
    other.verify_pin("654321")
    digest = hashlib.sha256(b"x").digest()
    public.verify(other.sign(0x9E, "P256", digest), digest, ec.ECDSA(Prehashed(hashes.SHA256())))


def test_discovery_object_and_missing_objects(client, card):
    assert client.get_object(0x7E).startswith(b"\x4f\x0b\xa0\x00\x00\x03\x08")
    assert client.get_object(0x5FC10A) is None
    data, status = exchange(card.transmit, Command(0x00, 0xFD, 0, 0, le=0))
    assert status == 0x9000 and len(data) == 3


def test_a_card_profile_can_come_from_a_json_file(tmp_path):
    import json

    from tasks.cardsdk.piv import profiles

    data = dict(profiles.PROFILES["piv-aes128-p256"], factory_pin="654321")
    path = tmp_path / "acme-stock.json"
    path.write_text(json.dumps(data))
    profile = profiles.get(str(path))
    assert (profile.name, profile.factory_pin) == ("acme-stock", "654321")
    assert profile.management_algorithm == "AES128"


def signature_status(client: PivClient, slot: int) -> int:
    """The status word of one P-256 signature with ``slot``."""
    try:
        client.sign(slot, "P256", hashlib.sha256(b"door").digest())
    except StatusWordError as error:
        return error.sw
    return 0x9000


def test_the_digital_signature_key_needs_a_verify_before_every_signature(card, client):
    client.authenticate(FACTORY_KEY, "3DES")
    for slot in (0x9A, 0x9C):
        client.generate_key(slot, "P256")
    client.verify_pin("123456")
    assert [signature_status(client, 0x9C), signature_status(client, 0x9C)] == [0x9000, 0x6982]
    # PIV Authentication stays open for the session once the PIN is verified.
    assert [signature_status(client, 0x9A), signature_status(client, 0x9A)] == [0x9000, 0x9000]
    client.verify_pin("123456")
    assert signature_status(client, 0x9C) == 0x9000
    # A failed VERIFY, a logout or a reset takes the permission back.
    client.verify_pin("123456")
    with pytest.raises(WrongPinError):
        client.verify_pin("000000")
    assert signature_status(client, 0x9C) == 0x6982
    client.verify_pin("123456")
    card.reset()
    client.select()
    assert signature_status(client, 0x9C) == 0x6982


def test_a_blank_card_takes_its_behaviour_from_the_profile():
    from tasks.cardsdk.piv import profiles

    profile = profiles.get("piv-aes128-fixed-key")
    card = VirtualPivCard.blank(profile)
    client = PivClient(card.transmit)
    client.select()
    assert client.pin_tries_left() == 5
    for left in (4, 3):
        with pytest.raises(WrongPinError) as error:
            client.verify_pin("000000")
        assert error.value.tries_left == left
    client.verify_pin(profile.factory_pin)  # a right PIN restores the stock's count, not 3
    assert card.pin_tries == 5 and card.puk_tries == 10
    with pytest.raises(StatusWordError) as mutual:
        client.authenticate(profile.management_key, "AES128", mutual=True)
    assert mutual.value.sw == 0x6A81
    client.authenticate(profile.management_key, "AES128", mutual=False)
    with pytest.raises(StatusWordError) as change:
        client.set_management_key(bytes(16), "AES128")
    assert change.value.sw == 0x6D00
    copy = VirtualPivCard.from_json(card.to_json())
    assert (copy.pin_retries, copy.puk_retries, copy.authentication, copy.management_key_change) == (
        5, 10, "external", "none")
    mutual_only = VirtualPivCard.blank(profiles.get("piv-3des-p256"))
    other = PivClient(mutual_only.transmit)
    other.select()
    with pytest.raises(StatusWordError) as external:
        other.authenticate(FACTORY_KEY, "3DES", mutual=False)
    assert external.value.sw == 0x6A81


@pytest.mark.parametrize(("change", "reason"), [
    ({"slot_algorithms": {"PIV Authentication": "P256"}}, "Card Authentication"),
    ({"pin_retries": 0}, "pin_retries must be a whole number from 1 to 15"),
    ({"puk_retries": 16}, "puk_retries must be a whole number from 1 to 15"),
    ({"pin_retries": True}, "pin_retries"),
    ({"pin_retries": "3"}, "pin_retries"),
    ({"authentication": "both"}, "authentication must be one of mutual, external"),
    ({"management_key_change": "apdu"}, "management_key_change must be one of"),
    ({"management_key": "zz"}, "non-hexadecimal"),
    ({"management_key": "0011"}, "does not fit 3DES"),
    ({"slot_algorithms": {"Card Authentication": "ED25519"}}, "unknown slot"),
    ({"factory_pin": None}, None),
])
def test_a_bad_card_profile_is_refused_with_what_is_wrong(tmp_path, change, reason):
    import json

    from tasks.cardsdk.piv import profiles

    data = {**profiles.PROFILES["piv-3des-p256"], **change}
    if change == {"factory_pin": None}:
        del data["factory_pin"]
        reason = "factory_pin is missing"
    path = tmp_path / "stock.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=reason) as error:
        profiles.get(str(path))
    assert "'stock'" in str(error.value)


@pytest.mark.parametrize("text", ["[1, 2]", "{not json", ""])
def test_a_profile_file_that_is_not_a_json_object_is_refused(tmp_path, text):
    from tasks.cardsdk.piv import profiles

    path = tmp_path / "broken.json"
    path.write_text(text)
    with pytest.raises(ValueError, match="card profile file broken.json"):
        profiles.get(str(path))


def test_a_blank_card_generates_only_its_stocks_key_algorithms():
    from tasks.cardsdk.piv import profiles

    card = VirtualPivCard.blank(profiles.get("piv-aes128-p256"))  # three slots, P-256 only
    client = PivClient(card.transmit)
    client.select()
    client.authenticate(bytes.fromhex("000102030405060708090a0b0c0d0e0f"), "AES128")
    for slot, algorithm, status in ((0x9A, "RSA2048", 0x6A80), (0x9D, "P256", 0x6A86)):
        with pytest.raises(StatusWordError) as refused:
            client.generate_key(slot, algorithm)
        assert refused.value.sw == status
    client.generate_key(0x9E, "P256")
    assert VirtualPivCard.from_json(card.to_json()).slot_algorithms == {0x9A: 0x11, 0x9C: 0x11, 0x9E: 0x11}
