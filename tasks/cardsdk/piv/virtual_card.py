"""A virtual PIV card (NIST SP 800-73-4 card edge plus the YubiKey extensions tools rely on).

``VirtualPivCard.transmit(apdu) -> response`` is the whole interface: the in-process transport
calls it directly, the vpcd process feeds it APDUs from pcscd. Keys are real (RSA-2048, P-256),
so OpenSC can sign with them. ``to_json``/``from_json`` keep a card across process restarts.
``VirtualPivCard.blank(profile)`` is a blank card of a card stock: its factory secrets, retry
counts, authentication mode and management-key command come from the same profile the encoder
uses. As a real card, the Digital Signature key (9C) is "PIN always": each signature needs a
VERIFY of its own.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field

from tasks.cardsdk.piv import card_keys, mgmt_key
from tasks.cardsdk.piv.apdu import Command, parse_command, parse_tlv, tlv
from tasks.cardsdk.piv.errors import MalformedResponseError
from tasks.cardsdk.piv.profiles import ALGORITHMS, DEFAULT_MANAGEMENT_KEY, PIV_AID, SLOTS, CardProfile

PIV_RID = PIV_AID[:5]
# T=1, historical bytes: category 80, issuer data "cardflow" (so no OpenSC driver claims it by ATR).
ATR = bytes.fromhex("3B8A80018058") + b"cardflow"
KEY_SLOTS = (0x9A, 0x9C, 0x9D, 0x9E)
PIN_SLOTS = (0x9A, 0x9C, 0x9D)
# SP 800-73-4 3.2.2: the Digital Signature key needs the PIN verified right before each use.
PIN_ALWAYS_SLOTS = (0x9C,)
FACTORY_TRIES = 3


class _Status(Exception):
    """Internal: abort a command with a status word."""

    def __init__(self, sw: int) -> None:
        """Carry the status word."""
        self.sw = sw


def _with_tck(atr: bytes) -> bytes:
    """Append the ATR check byte (XOR of T0..last), required when T=1 is offered."""
    tck = 0
    for byte in atr[1:]:
        tck ^= byte
    return atr + bytes([tck])


@dataclass
class VirtualPivCard:
    """Persistent card state; session state (login, chains) lives in private attributes."""

    serial: int = field(default_factory=lambda: 10_000_000 + secrets.randbelow(89_999_999))
    pin: bytes = b"123456\xff\xff"
    puk: bytes = b"12345678"
    pin_tries: int = FACTORY_TRIES
    puk_tries: int = FACTORY_TRIES
    management_algorithm: str = "3DES"
    management_key: bytes = bytes.fromhex(DEFAULT_MANAGEMENT_KEY)
    keys: dict[int, bytes] = field(default_factory=dict)  # slot -> PKCS#8 PEM
    objects: dict[int, bytes] = field(default_factory=dict)  # object tag -> content of 53
    discovery: bytes = tlv(0x4F, PIV_AID) + tlv(0x5F2F, b"\x40\x00")
    # What the card stock allows (from its profile): retry counts a correct PIN/PUK restores,
    # "mutual", "external" or "any" authentication, "yubikey" or "none" management-key change.
    pin_retries: int = FACTORY_TRIES
    puk_retries: int = FACTORY_TRIES
    authentication: str = "any"
    management_key_change: str = "yubikey"
    # Key slot -> the one algorithm id it generates (the stock's key algorithms); None: any slot, any.
    slot_algorithms: dict[int, int] | None = None

    @classmethod
    def blank(cls, profile: CardProfile) -> VirtualPivCard:
        """A blank card of the stock ``profile`` describes."""
        return cls(
            pin=profile.factory_pin.encode().ljust(8, b"\xff"),
            puk=profile.factory_puk.encode().ljust(8, b"\xff"),
            pin_tries=profile.pin_retries,
            puk_tries=profile.puk_retries,
            pin_retries=profile.pin_retries,
            puk_retries=profile.puk_retries,
            management_algorithm=profile.management_algorithm,
            management_key=profile.management_key,
            authentication=profile.authentication,
            management_key_change=profile.management_key_change,
            slot_algorithms={SLOTS[name]["slot"]: ALGORITHMS[algorithm]
                             for name, algorithm in profile.slot_algorithms.items()},
        )

    def __post_init__(self) -> None:
        """Start a session as after power-on."""
        self.removed = False
        self.dirty = False
        self.reset()

    @property
    def atr(self) -> bytes:
        """The answer to reset pcscd shows for this card."""
        return _with_tck(ATR)

    def reset(self) -> None:
        """Power cycle: forget selection, logins, pending chains; keep everything persistent."""
        self._selected = False
        self._pin_ok = False
        # Set by a successful VERIFY, spent by one operation with a PIN-always key.
        self._pin_always_ok = False
        self._admin = False
        self._chain = b""
        self._chain_ins: int | None = None
        self._pending = b""
        self._challenge: bytes | None = None

    def transmit(self, raw: bytes) -> bytes:
        """Answer one command APDU with response data + SW1SW2."""
        try:
            command = parse_command(raw)
        except ValueError:
            return b"\x67\x00"
        try:
            data = self._dispatch(command)
        except _Status as status:
            return status.sw.to_bytes(2, "big")
        except MalformedResponseError:
            # A TLV in the command did not parse: the terminal sent bad data.
            return b"\x6a\x80"
        return self._respond(data, command.le)

    def _respond(self, data: bytes, le: int | None) -> bytes:
        """Send at most one short response; keep the rest for GET RESPONSE (61xx)."""
        size = min(le or 256, 256)
        head, self._pending = data[:size], data[size:]
        if self._pending:
            return head + bytes([0x61, min(len(self._pending), 256) & 0xFF])
        return head + b"\x90\x00"

    def _dispatch(self, command: Command) -> bytes:
        """Route a command to its handler, after command chaining and GET RESPONSE."""
        if command.ins == 0xC0:
            if not self._pending:
                raise _Status(0x6985)
            pending, self._pending = self._pending, b""
            return pending
        self._pending = b""
        if command.cla & 0x10:
            if self._chain_ins not in (None, command.ins):
                self._chain = b""
            self._chain_ins = command.ins
            self._chain += command.data
            raise _Status(0x9000)
        if self._chain_ins is not None:
            if self._chain_ins != command.ins:
                self._chain, self._chain_ins = b"", None
                raise _Status(0x6883)
            command = Command(command.cla, command.ins, command.p1, command.p2, self._chain + command.data)
            self._chain, self._chain_ins = b"", None
        if command.cla & 0xEF not in (0x00,):
            raise _Status(0x6E00)
        if command.ins == 0xA4:
            return self._select(command)
        if not self._selected:
            raise _Status(0x6985)
        handlers = {
            0x20: self._verify,
            0x24: self._change_reference,
            0x2C: self._reset_retry,
            0x47: self._generate,
            0x87: self._general_authenticate,
            0xCB: self._get_data,
            0xDB: self._put_data,
            0xF8: lambda _c: self.serial.to_bytes(4, "big"),
            0xFD: lambda _c: b"\x05\x04\x03",
            0xFF: self._set_management_key,
        }
        handler = handlers.get(command.ins)
        if handler is None:
            raise _Status(0x6D00)
        return handler(command)

    def _select(self, command: Command) -> bytes:
        """SELECT by (partial) AID: the PIV application answers its property template."""
        aid = command.data
        if command.p1 != 0x04 or len(aid) < len(PIV_RID) or not PIV_AID.startswith(aid):
            # Other applications do not exist here; the current selection stays (as on a YubiKey).
            raise _Status(0x6A82)
        self._selected = True
        algorithms = b"".join(tlv(0x80, bytes([alg])) for alg in ALGORITHMS.values()) + tlv(0x06, b"")
        return tlv(
            0x61,
            tlv(0x4F, PIV_AID[5:])
            + tlv(0x79, tlv(0x4F, PIV_RID))
            + tlv(0x50, b"cardflow virtual PIV")
            + tlv(0xAC, algorithms),
        )

    def _check_reference(self, which: int, value: bytes) -> None:
        """Compare a PIN (80) or PUK (81), counting down tries; 63Cx or 6983 on failure."""
        tries = self.pin_tries if which == 0x80 else self.puk_tries
        if tries == 0:
            raise _Status(0x6983)
        if secrets.compare_digest(value, self.pin if which == 0x80 else self.puk):
            self._set_tries(which, self.pin_retries if which == 0x80 else self.puk_retries)
            return
        self._set_tries(which, tries - 1)
        raise _Status(0x63C0 | (tries - 1) if tries > 1 else 0x6983)

    def _set_tries(self, which: int, tries: int) -> None:
        """Store a retry counter (persistent state)."""
        if which == 0x80:
            self.pin_tries = tries
        else:
            self.puk_tries = tries
        self.dirty = True

    def _verify(self, command: Command) -> bytes:
        """VERIFY PIN: empty data asks the status, P1=FF logs out, 8 bytes try the PIN."""
        if command.p2 != 0x80:
            raise _Status(0x6A88)
        if command.p1 == 0xFF:
            self._pin_ok = self._pin_always_ok = False
            return b""
        if not command.data:
            if self._pin_ok:
                return b""
            raise _Status(0x63C0 | self.pin_tries if self.pin_tries else 0x6983)
        if len(command.data) != 8:
            raise _Status(0x6A80)
        self._pin_ok = self._pin_always_ok = False
        self._check_reference(0x80, command.data)
        self._pin_ok = self._pin_always_ok = True
        return b""

    def _change_reference(self, command: Command) -> bytes:
        """CHANGE REFERENCE DATA for the PIN (80) or PUK (81): old 8 bytes then new 8 bytes."""
        if command.p2 not in (0x80, 0x81):
            raise _Status(0x6A88)
        if len(command.data) != 16:
            raise _Status(0x6A80)
        old, new = command.data[:8], command.data[8:]
        self._check_reference(command.p2, old)
        if command.p2 == 0x80 and not _valid_pin(new):
            raise _Status(0x6A80)
        if command.p2 == 0x80:
            self.pin = new
        else:
            self.puk = new
        self.dirty = True
        return b""

    def _reset_retry(self, command: Command) -> bytes:
        """RESET RETRY COUNTER: unblock the PIN with the PUK and set a new PIN."""
        if command.p2 != 0x80 or len(command.data) != 16 or not _valid_pin(command.data[8:]):
            raise _Status(0x6A80)
        self._check_reference(0x81, command.data[:8])
        self.pin = command.data[8:]
        self._set_tries(0x80, self.pin_retries)
        return b""

    def _require_admin(self) -> None:
        """Management operations need a prior 9B authentication in this session."""
        if not self._admin:
            raise _Status(0x6982)

    def _generate(self, command: Command) -> bytes:
        """GENERATE ASYMMETRIC KEY PAIR into slot P2; answers the public key (7F49)."""
        self._require_admin()
        if command.p2 not in KEY_SLOTS:
            raise _Status(0x6A86)
        template = dict(parse_tlv(command.data)).get(0xAC)
        algorithm = dict(parse_tlv(template)).get(0x80) if template is not None else None
        if self.slot_algorithms is not None:
            if command.p2 not in self.slot_algorithms:
                raise _Status(0x6A86)  # this stock has no such key slot
            if algorithm != bytes([self.slot_algorithms[command.p2]]):
                raise _Status(0x6A80)
        try:
            self.keys[command.p2], public_key = card_keys.generate(algorithm)
        except card_keys.BadKeyRequest:
            raise _Status(0x6A80) from None
        self.dirty = True
        return public_key

    def _general_authenticate(self, command: Command) -> bytes:
        """GENERAL AUTHENTICATE: 9B management-key auth, or a private-key operation in a slot."""
        template = dict(parse_tlv(command.data)).get(0x7C)
        if template is None:
            raise _Status(0x6A80)
        items = dict(parse_tlv(template))
        if command.p2 == 0x9B:
            return self._authenticate_admin(command.p1, items)
        return self._private_key_operation(command.p1, command.p2, items)

    def _authenticate_admin(self, algorithm: int, items: dict[int, bytes]) -> bytes:
        """Mutual (80 witness) or external (81 challenge) authentication with the management key."""
        if mgmt_key.ALGORITHM_NAMES.get(algorithm) != self.management_algorithm:
            raise _Status(0x6A86)
        size = mgmt_key.block_size(self.management_algorithm)

        def encrypt(block: bytes) -> bytes:
            """The challenge block under the current management key."""
            return mgmt_key.encrypt_block(self.management_algorithm, self.management_key, block)

        expected, self._challenge = self._challenge, None
        self._admin = False
        asks_witness, asks_challenge = items.get(0x80) == b"", items.get(0x81) == b"" and 0x80 not in items
        if (asks_witness and self.authentication == "external") or (
                asks_challenge and self.authentication == "mutual"):
            # This stock does not offer that way of proving the management key.
            raise _Status(0x6A81)
        if asks_witness:
            self._challenge = secrets.token_bytes(size)
            return tlv(0x7C, tlv(0x80, encrypt(self._challenge)))
        if asks_challenge:
            self._challenge = secrets.token_bytes(size)
            return tlv(0x7C, tlv(0x81, self._challenge))
        if expected is None:
            raise _Status(0x6985)
        if 0x80 in items and 0x81 in items:
            if not secrets.compare_digest(items[0x80], expected) or len(items[0x81]) != size:
                raise _Status(0x6982)
            self._admin = True
            return tlv(0x7C, tlv(0x82, encrypt(items[0x81])))
        if 0x82 in items and secrets.compare_digest(items[0x82], encrypt(expected)):
            self._admin = True
            return b""
        raise _Status(0x6982)

    def _private_key_operation(self, algorithm: int, slot: int, items: dict[int, bytes]) -> bytes:
        """Sign (81 challenge) or ECDH (85 point) with the key in ``slot``; PIN first except 9E."""
        if slot not in KEY_SLOTS:
            raise _Status(0x6A86)
        if slot not in self.keys:
            raise _Status(0x6A82)
        if slot in PIN_SLOTS and not self._pin_ok:
            raise _Status(0x6982)
        if slot in PIN_ALWAYS_SLOTS:
            if not self._pin_always_ok:
                raise _Status(0x6982)
            self._pin_always_ok = False
        try:
            return tlv(0x7C, tlv(0x82, card_keys.private_operation(self.keys[slot], algorithm, items)))
        except card_keys.BadKeyRequest:
            raise _Status(0x6A80) from None

    def _object_tag(self, command: Command) -> int:
        """The object named by tag 5C of a GET/PUT DATA command."""
        if (command.p1, command.p2) != (0x3F, 0xFF):
            raise _Status(0x6A86)
        items = parse_tlv(command.data)
        if not items or items[0][0] != 0x5C or not 1 <= len(items[0][1]) <= 3:
            raise _Status(0x6A80)
        return int.from_bytes(items[0][1], "big")

    def _get_data(self, command: Command) -> bytes:
        """GET DATA: objects come back wrapped in 53, the discovery object in its own 7E."""
        tag = self._object_tag(command)
        if tag == 0x7E:
            return tlv(0x7E, self.discovery)
        if tag not in self.objects:
            raise _Status(0x6A82)
        return tlv(0x53, self.objects[tag])

    def _put_data(self, command: Command) -> bytes:
        """PUT DATA: 5C names the object, 53 carries it (empty 53 deletes it)."""
        self._require_admin()
        tag = self._object_tag(command)
        items = dict(parse_tlv(command.data))
        if 0x53 not in items:
            raise _Status(0x6A80)
        if items[0x53]:
            self.objects[tag] = items[0x53]
        else:
            self.objects.pop(tag, None)
        self.dirty = True
        return b""

    def _set_management_key(self, command: Command) -> bytes:
        """YubiKey SET MANAGEMENT KEY (INS FF): algorithm, 9B, length, key."""
        if self.management_key_change != "yubikey":
            raise _Status(0x6D00)
        self._require_admin()
        data = command.data
        name = mgmt_key.ALGORITHM_NAMES.get(data[0]) if len(data) > 3 else None
        if name is None or data[1] != 0x9B or data[2] != len(data) - 3:
            raise _Status(0x6A80)
        if len(data) - 3 != mgmt_key.MANAGEMENT_KEY_LENGTHS[name]:
            raise _Status(0x6A80)
        self.management_algorithm, self.management_key = name, bytes(data[3:])
        self.dirty = True
        return b""

    def to_json(self) -> str:
        """Serialise the persistent state (keys included: this is a test card, not a vault)."""
        return json.dumps(
            {
                "serial": self.serial,
                "pin": self.pin.hex(),
                "puk": self.puk.hex(),
                "pin_tries": self.pin_tries,
                "puk_tries": self.puk_tries,
                "management_algorithm": self.management_algorithm,
                "management_key": self.management_key.hex(),
                "keys": {f"{slot:02X}": pem.decode() for slot, pem in self.keys.items()},
                "objects": {f"{tag:X}": value.hex() for tag, value in self.objects.items()},
                "discovery": self.discovery.hex(),
                "pin_retries": self.pin_retries,
                "puk_retries": self.puk_retries,
                "authentication": self.authentication,
                "management_key_change": self.management_key_change,
                "slot_algorithms": None if self.slot_algorithms is None else {
                    f"{slot:02X}": algorithm for slot, algorithm in self.slot_algorithms.items()},
            }
        )

    @classmethod
    def from_json(cls, text: str) -> VirtualPivCard:
        """Rebuild a card saved by ``to_json``."""
        data = json.loads(text)
        return cls(
            serial=data["serial"],
            pin=bytes.fromhex(data["pin"]),
            puk=bytes.fromhex(data["puk"]),
            pin_tries=data["pin_tries"],
            puk_tries=data["puk_tries"],
            management_algorithm=data["management_algorithm"],
            management_key=bytes.fromhex(data["management_key"]),
            keys={int(slot, 16): pem.encode() for slot, pem in data["keys"].items()},
            objects={int(tag, 16): bytes.fromhex(value) for tag, value in data["objects"].items()},
            discovery=bytes.fromhex(data["discovery"]),
            # Cards saved before profiles drove the card keep the behaviour they had.
            pin_retries=data.get("pin_retries", FACTORY_TRIES),
            puk_retries=data.get("puk_retries", FACTORY_TRIES),
            authentication=data.get("authentication", "any"),
            management_key_change=data.get("management_key_change", "yubikey"),
            slot_algorithms=None if data.get("slot_algorithms") is None else {
                int(slot, 16): algorithm for slot, algorithm in data["slot_algorithms"].items()},
        )


def _valid_pin(value: bytes) -> bool:
    """A PIV PIN: 6-8 ASCII digits, padded with FF to 8 bytes."""
    digits = value.rstrip(b"\xff")
    return 6 <= len(digits) <= 8 and digits.isdigit() and b"\xff" not in digits
