"""The PIV data objects the encoder writes besides certificates: CHUID, CCC and Security Object
(SP 800-73-4 part 1, tables 8, 9 and 12).

The CHUID carries the card's FASC-N, GUID and expiry, signed by the issuer's content signer; the
Security Object holds the signed hashes of every other data object written, so a relying party
can tell that nothing on the card was changed after personalisation.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import date

from asn1crypto import algos, core

from tasks.cardsdk import cms_signing
from tasks.cardsdk.cms_signing import SigningKey
from tasks.cardsdk.piv.apdu import tlv
from tasks.cardsdk.piv.profiles import OBJECT_CCC, OBJECT_CHUID, SLOTS

OBJECT_SECURITY = 0x5FC106
# Data object tag -> its container id (SP 800-73-4 part 1, table 2), which the mapping uses.
CONTAINER_IDS = {
    OBJECT_CCC: 0xDB00,
    OBJECT_CHUID: 0x3000,
    SLOTS["PIV Authentication"]["object"]: 0x0101,
    SLOTS["Digital Signature"]["object"]: 0x0100,
    SLOTS["Key Management"]["object"]: 0x0102,
    SLOTS["Card Authentication"]["object"]: 0x0500,
}


class DataGroupHash(core.Sequence):
    """ICAO 9303 part 10: one data group's number and hash."""

    _fields = [("data_group_number", core.Integer), ("data_group_hash_value", core.OctetString)]


class DataGroupHashes(core.SequenceOf):
    """The hashes, one per data group."""

    _child_spec = DataGroupHash


class LdsSecurityObject(core.Sequence):
    """ICAO 9303 LDSSecurityObject (version 0), which PIV's Security Object signs."""

    _fields = [
        ("version", core.Integer),
        ("hash_algorithm", algos.DigestAlgorithm),
        ("data_group_hash_values", DataGroupHashes),
    ]


def chuid(fascn: bytes, card_uuid: uuid.UUID, expires: date, key: SigningKey, certificate) -> bytes:
    """The CHUID: FASC-N, GUID, expiry, and the issuer's signature over those three elements
    (tags and lengths included, as SP 800-73-4 3.1.2 says), then the empty error detection code."""
    expiry = expires.strftime("%Y%m%d").encode()
    signed_part = tlv(0x30, fascn) + tlv(0x34, card_uuid.bytes) + tlv(0x35, expiry)
    signature = cms_signing.sign(signed_part, cms_signing.ID_PIV_CHUID_SECURITY_OBJECT, key, certificate,
                                 detached=True)
    return signed_part + tlv(0x3E, signature) + tlv(0xFE, b"")


def ccc(card_uuid: uuid.UUID) -> bytes:
    """The Card Capability Container, version 2.1; its card identifier ends with the card's GUID."""
    card_identifier = bytes.fromhex("A000000116FF02") + card_uuid.bytes[:14]
    fields = [(0xF0, card_identifier), (0xF1, b"\x21"), (0xF2, b"\x21"), (0xF3, b""), (0xF4, b"\x00")]
    fields += [(0xF5, b"\x10"), (0xF6, b""), (0xF7, b""), (0xFA, b""), (0xFB, b""), (0xFC, b"")]
    fields += [(0xFD, b""), (0xFE, b"")]
    return b"".join(tlv(tag, value) for tag, value in fields)


def security_object(written: list[tuple[int, bytes]], key: SigningKey, certificate) -> bytes:
    """The Security Object over ``written`` (object tag, content of its tag 53, in write order).

    Data group n is the n-th object written; the mapping (tag BA) pairs each number with the
    object's container id, and the signed LDS Security Object (tag BB) holds the SHA-256 of each
    object's content exactly as GET DATA returns it inside tag 53. The signer's certificate is the
    CHUID's (same content signer): leaving it out keeps the object within the 1336 bytes every PIV
    card must hold for it (SP 800-73-4 part 1, appendix A), with four certificates on the card.
    """
    if len(written) < 2:
        raise ValueError("an LDS Security Object covers at least two data objects")
    mapping = b"".join(bytes([number]) + CONTAINER_IDS[tag].to_bytes(2, "big")
                       for number, (tag, _content) in enumerate(written, start=1))
    lds = LdsSecurityObject({
        "version": 0,
        "hash_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
        "data_group_hash_values": [
            {"data_group_number": number, "data_group_hash_value": hashlib.sha256(content).digest()}
            for number, (_tag, content) in enumerate(written, start=1)],
    })
    signed = cms_signing.sign(lds.dump(), cms_signing.ID_ICAO_LDS_SECURITY_OBJECT, key, certificate,
                              detached=False, with_certificate=False)
    return tlv(0xBA, mapping) + tlv(0xBB, signed) + tlv(0xFE, b"")
