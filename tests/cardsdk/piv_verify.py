"""What a relying party checks on a PIV card's signed objects, with ``cryptography`` doing the
signature and hash checks against the CA certificate (asn1crypto only takes the CMS apart).

Written apart from the product's signing code, from SP 800-73-4 and RFC 5652, so a mistake in one
does not hide in the other.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from asn1crypto import algos, cms, core
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from tasks.cardsdk.piv.apdu import parse_tlv

ID_PIV_CONTENT_SIGNING = x509.ObjectIdentifier("2.16.840.1.101.3.6.7")
CHUID_TYPE = "2.16.840.1.101.3.6.1"
LDS_TYPE = "2.23.136.1.1.1"
# Container id -> data object tag (SP 800-73-4 part 1, table 2).
OBJECTS = {0xDB00: 0x5FC107, 0x3000: 0x5FC102, 0x0101: 0x5FC105, 0x0100: 0x5FC10A, 0x0102: 0x5FC10B,
           0x0500: 0x5FC101}


class DataGroupHash(core.Sequence):
    """ICAO 9303 part 10 DataGroupHash."""

    _fields = [("number", core.Integer), ("hash", core.OctetString)]


class DataGroupHashes(core.SequenceOf):
    """SEQUENCE OF DataGroupHash."""

    _child_spec = DataGroupHash


class LdsSecurityObject(core.Sequence):
    """ICAO 9303 part 10 LDSSecurityObject, version 0."""

    _fields = [("version", core.Integer), ("hash_algorithm", algos.DigestAlgorithm),
               ("hashes", DataGroupHashes)]


@dataclass
class Signed:
    """A verified SignedData: its signer's certificate and the content it covers."""

    signer: x509.Certificate
    content: bytes


def verify_signed_data(der: bytes, ca: x509.Certificate, content_type: str,
                       detached_content: bytes | None = None,
                       known_signer: x509.Certificate | None = None) -> Signed:
    """Check a ContentInfo/SignedData as a relying party does; AssertionError on any fault. A
    message without certificates is checked against ``known_signer`` (the CHUID's signer)."""
    info = cms.ContentInfo.load(der)
    assert info["content_type"].native == "signed_data"
    signed = info["content"]
    assert signed["encap_content_info"]["content_type"].dotted == content_type
    encapsulated = signed["encap_content_info"]["content"]
    if detached_content is None:
        content = encapsulated.native
    else:
        assert encapsulated.native is None, "the CHUID's signature must be detached"
        content = detached_content
    certificates = [x509.load_der_x509_certificate(choice.chosen.dump())
                    for choice in (signed["certificates"] or [])] or [known_signer]
    assert len(signed["signer_infos"]) == 1
    signer_info = signed["signer_infos"][0]
    sid = signer_info["sid"].chosen
    signer = next(cert for cert in certificates if cert.serial_number == sid["serial_number"].native)
    signer.verify_directly_issued_by(ca)
    usages = signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ID_PIV_CONTENT_SIGNING in usages
    attributes = {attribute["type"].dotted: attribute["values"] for attribute in signer_info["signed_attrs"]}
    assert attributes["1.2.840.113549.1.9.3"][0].dotted == content_type
    assert attributes["1.2.840.113549.1.9.4"][0].native == hashlib.sha256(content).digest()
    assert attributes["2.16.840.1.101.3.6.5"][0].dump() == signer.subject.public_bytes()  # pivSigner-DN
    # The signature covers the attributes DER-encoded as a SET (RFC 5652 5.4), not as [0].
    to_verify = b"\x31" + signer_info["signed_attrs"].dump()[1:]
    signature = signer_info["signature"].native
    key = signer.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(signature, to_verify, ec.ECDSA(hashes.SHA256()))
    else:
        assert isinstance(key, rsa.RSAPublicKey)
        key.verify(signature, to_verify, padding.PKCS1v15(), hashes.SHA256())
    return Signed(signer, content)


def verify_chuid(chuid: bytes, ca: x509.Certificate) -> dict[int, bytes]:
    """Check the CHUID's issuer signature over everything before tag 3E; returns its elements
    and, under key ``"signer"``, the content signer's certificate."""
    elements = parse_tlv(chuid)
    tags = [tag for tag, _ in elements]
    assert tags == [0x30, 0x34, 0x35, 0x3E, 0xFE], tags
    # FASC-N, GUID and expiry are short TLVs (one tag byte, one length byte each).
    signed_part = chuid[:sum(2 + len(value) for _, value in elements[:3])]
    signed = verify_signed_data(dict(elements)[0x3E], ca, CHUID_TYPE, detached_content=signed_part)
    return {**dict(elements), "signer": signed.signer}


def verify_security_object(security_object: bytes, ca: x509.Certificate, read_object) -> dict[int, int]:
    """Check the Security Object's signature (by the CHUID's signer, whose certificate the CHUID
    carries) and every hash against the objects ``read_object(tag)`` returns from the card;
    returns data group number -> object tag."""
    elements = dict(parse_tlv(security_object))
    mapping = elements[0xBA]
    assert len(mapping) % 3 == 0
    groups = {mapping[i]: OBJECTS[int.from_bytes(mapping[i + 1:i + 3], "big")]
              for i in range(0, len(mapping), 3)}
    assert len(security_object) <= 1336, "larger than every PIV card must hold"
    chuid_signer = verify_chuid(read_object(0x5FC102), ca)["signer"]
    signed = verify_signed_data(elements[0xBB], ca, LDS_TYPE, known_signer=chuid_signer)
    lds = LdsSecurityObject.load(signed.content).native
    assert lds["version"] == 0 and lds["hash_algorithm"]["algorithm"] == "sha256"
    hashes_by_group = {entry["number"]: entry["hash"] for entry in lds["hashes"]}
    assert set(hashes_by_group) == set(groups)
    for number, tag in groups.items():
        content = read_object(tag)
        assert content is not None, f"the card lacks object {tag:06X}"
        assert hashlib.sha256(content).digest() == hashes_by_group[number], f"hash of {tag:06X}"
    return groups
