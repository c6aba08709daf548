"""PivClient: the SP 800-73-4 commands personalisation needs, over any ``transmit`` callable."""

from __future__ import annotations

import secrets

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tasks.cardsdk.piv import mgmt_key
from tasks.cardsdk.piv.apdu import (
    SW_OK,
    Command,
    Transmit,
    check_sw,
    exchange,
    find_tlv,
    parse_tlv,
    require_tlv,
    tlv,
)
from tasks.cardsdk.piv.errors import MalformedResponseError, StatusWordError, WrongFactoryKeyError
from tasks.cardsdk.piv.profiles import ALGORITHMS, PIV_AID

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


def pad_reference(value: str) -> bytes:
    """A PIN or PUK as the card stores it: ASCII digits padded with FF to 8 bytes."""
    raw = value.encode("ascii")
    if len(raw) > 8:
        raise ValueError("PIV PINs and PUKs are at most 8 characters")
    return raw.ljust(8, b"\xff")


class PivClient:
    """Commands to the PIV application of one card."""

    def __init__(self, transmit: Transmit) -> None:
        """Talk to the card through ``transmit`` (a Transport's bound method or a plain function)."""
        self._transmit = transmit

    def _run(self, command: Command, action: str) -> bytes:
        """Exchange ``command``; raise the operator-facing error for ``action`` unless 9000."""
        data, sw = exchange(self._transmit, command)
        check_sw(sw, action)
        return data

    def select(self) -> bytes:
        """SELECT the PIV application; returns its application property template (tag 61)."""
        answer = self._run(Command(0x00, 0xA4, 0x04, 0x00, PIV_AID, 256), "Selecting the PIV application")
        if answer:
            require_tlv(answer, 0x61, "SELECT")
        return answer

    def verify_pin(self, pin: str) -> None:
        """VERIFY the PIN (key reference 80)."""
        self._run(Command(0x00, 0x20, 0x00, 0x80, pad_reference(pin)), "Verifying the PIN")

    def pin_tries_left(self) -> int | None:
        """Remaining PIN tries (None when the PIN is already verified in this session)."""
        _, sw = exchange(self._transmit, Command(0x00, 0x20, 0x00, 0x80))
        if sw == SW_OK:
            return None
        if sw == 0x6983:
            return 0
        if sw & 0xFFF0 == 0x63C0:
            return sw & 0x0F
        raise StatusWordError(f"Reading the PIN tries: the card answered {sw:04X}.", sw)

    def change_pin(self, old: str, new: str) -> None:
        """CHANGE REFERENCE DATA for the PIN (80)."""
        data = pad_reference(old) + pad_reference(new)
        self._run(Command(0x00, 0x24, 0x00, 0x80, data), "Changing the PIN")

    def change_puk(self, old: str, new: str) -> None:
        """CHANGE REFERENCE DATA for the PUK (81)."""
        data = pad_reference(old) + pad_reference(new)
        self._run(Command(0x00, 0x24, 0x00, 0x81, data), "Changing the PUK")

    def authenticate(self, key: bytes, algorithm: str, mutual: bool = True) -> None:
        """Authenticate with the management key (9B): mutual by default, external on request.

        A refusal raises WrongFactoryKeyError, since for us it means the card is not in the state
        (or of the stock) the profile describes.
        """
        alg = ALGORITHMS[algorithm]
        size = mgmt_key.block_size(algorithm)
        refused = WrongFactoryKeyError(
            "The card refused the management key: it is not a blank card of this card stock, or it "
            "was already personalised. Set it aside and check the card profile."
        )
        if mutual:
            answer = self._general_authenticate(alg, 0x9B, tlv(0x80, b""), "Authenticating to the card")
            witness = mgmt_key.decrypt_block(algorithm, key, require_tlv(answer, 0x80, "the witness"))
            challenge = secrets.token_bytes(size)
            payload = tlv(0x80, witness) + tlv(0x81, challenge)
            try:
                answer = self._general_authenticate(alg, 0x9B, payload, "Authenticating to the card")
            except StatusWordError as error:
                if error.sw == 0x6982:
                    raise refused from None
                raise
            proof = require_tlv(answer, 0x82, "the mutual authentication")
            if not secrets.compare_digest(proof, mgmt_key.encrypt_block(algorithm, key, challenge)):
                raise refused
            return
        answer = self._general_authenticate(alg, 0x9B, tlv(0x81, b""), "Authenticating to the card")
        challenge = require_tlv(answer, 0x81, "the challenge")
        if len(challenge) != size:
            raise MalformedResponseError("The card sent a challenge of the wrong size. Set the card aside.")
        response = tlv(0x82, mgmt_key.encrypt_block(algorithm, key, challenge))
        try:
            self._general_authenticate(alg, 0x9B, response, "Authenticating to the card", expect=False)
        except StatusWordError as error:
            if error.sw == 0x6982:
                raise refused from None
            raise

    def _general_authenticate(
        self, alg: int, reference: int, items: bytes, action: str, expect: bool = True
    ) -> bytes:
        """GENERAL AUTHENTICATE with a 7C template; returns the inside of the answer's 7C."""
        data = self._run(Command(0x00, 0x87, alg, reference, tlv(0x7C, items), 256), action)
        if not expect:
            return data
        return require_tlv(data, 0x7C, action)

    def generate_key(self, slot: int, algorithm: str) -> PublicKey:
        """GENERATE ASYMMETRIC KEY PAIR in ``slot``; returns the new public key."""
        template = tlv(0xAC, tlv(0x80, bytes([ALGORITHMS[algorithm]])))
        command = Command(0x00, 0x47, 0x00, slot, template, 256)
        answer = self._run(command, f"Generating the key in slot {slot:02X}")
        body = require_tlv(answer, 0x7F49, "GENERATE")
        try:
            if algorithm == "RSA2048":
                modulus = int.from_bytes(require_tlv(body, 0x81, "GENERATE"), "big")
                exponent = int.from_bytes(require_tlv(body, 0x82, "GENERATE"), "big")
                return rsa.RSAPublicNumbers(exponent, modulus).public_key()
            point = require_tlv(body, 0x86, "GENERATE")
            return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
        except ValueError:
            raise MalformedResponseError(
                "The card returned an unusable public key. Set the card aside."
            ) from None

    def sign(self, slot: int, algorithm: str, data: bytes) -> bytes:
        """GENERAL AUTHENTICATE with a private key: RSA raw block or ECDSA over a 32-byte digest."""
        items = tlv(0x82, b"") + tlv(0x81, data)
        action = f"Signing with slot {slot:02X}"
        answer = self._general_authenticate(ALGORITHMS[algorithm], slot, items, action)
        return require_tlv(answer, 0x82, "the signature")

    def put_object(self, tag: int, content: bytes) -> None:
        """PUT DATA: store ``content`` (the inside of tag 53) as object ``tag``."""
        data = tlv(0x5C, tag.to_bytes(3, "big")) + tlv(0x53, content)
        self._run(Command(0x00, 0xDB, 0x3F, 0xFF, data), f"Writing data object {tag:06X}")

    def get_object(self, tag: int) -> bytes | None:
        """GET DATA: the inside of tag 53 of object ``tag``, or None when the card lacks it."""
        name = tag.to_bytes(1 if tag == 0x7E else 3, "big")
        data, sw = exchange(self._transmit, Command(0x00, 0xCB, 0x3F, 0xFF, tlv(0x5C, name), 256))
        if sw in (0x6A82, 0x6A88):
            return None
        check_sw(sw, f"Reading data object {tag:06X}")
        return find_tlv(data, 0x7E if tag == 0x7E else 0x53)

    def set_management_key(self, key: bytes, algorithm: str) -> None:
        """Replace the management key (YubiKey-compatible SET MANAGEMENT KEY, INS FF)."""
        data = bytes([ALGORITHMS[algorithm], 0x9B, len(key)]) + key
        self._run(Command(0x00, 0xFF, 0xFF, 0xFF, data), "Replacing the management key")

    def serial(self) -> str | None:
        """The chip serial where the card offers one (YubiKey GET SERIAL, INS F8), else None."""
        data, sw = exchange(self._transmit, Command(0x00, 0xF8, 0x00, 0x00, le=256))
        if sw != SW_OK or len(data) != 4:
            return None
        return str(int.from_bytes(data, "big"))


def parse_apt(template: bytes) -> list[int]:
    """The algorithm identifiers a SELECT answer (application property template) announces."""
    inner = require_tlv(template, 0x61, "SELECT")
    algorithms = find_tlv(inner, 0xAC) or b""
    return [value[0] for tag, value in parse_tlv(algorithms) if tag == 0x80 and value]
