"""CMS SignedData as PIV signs its data objects (SP 800-73-4, FIPS 201-3 4.2.1 and 4.2.6).

One signer, identified by issuer and serial number; signed attributes content type, message
digest and pivSigner-DN; SHA-256. The CHUID's signature is detached (its content is the CHUID
itself) and carries the signer's certificate; the Security Object's encapsulates its content and
leaves the certificate to the CHUID, as a relying party takes it from there for every object the
same signer signed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

from asn1crypto import algos, core
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from tasks.cardsdk.piv.apdu import tlv

# id-PIV-CHUIDSecurityObject, id-icao-ldsSecurityObject, pivSigner-DN.
ID_PIV_CHUID_SECURITY_OBJECT = "2.16.840.1.101.3.6.1"
ID_ICAO_LDS_SECURITY_OBJECT = "2.23.136.1.1.1"
ID_PIV_SIGNER_DN = "2.16.840.1.101.3.6.5"

SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def sign(content: bytes, content_type: str, key: SigningKey, certificate: x509.Certificate,
         detached: bool, with_certificate: bool = True) -> bytes:
    """A DER ContentInfo holding SignedData over ``content`` by ``key`` (``certificate``'s key),
    with ``certificate`` in it unless ``with_certificate`` is false.

    Written as DER directly: every part but the digest, the signature and the content is the same
    for every card of a signer and is encoded once (asn1crypto built it in about 0.7 ms a
    signature, two a card). ``tests/cardsdk/test_cms_signing.py`` checks the bytes against
    asn1crypto's reading and re-encoding, and the signature with cryptography.
    """
    signer = _signer(certificate.public_bytes(serialization.Encoding.DER))
    # A DER SET OF is sorted by the elements' encodings (X.690 11.6); RFC 5652 5.4 signs that SET.
    attributes = b"".join(sorted((
        _attribute(_oid("1.2.840.113549.1.9.3"), _oid(content_type)),  # content type
        _attribute(_oid("1.2.840.113549.1.9.4"), tlv(0x04, hashlib.sha256(content).digest())),  # digest
        _attribute(_oid(ID_PIV_SIGNER_DN), signer.subject),
    )))
    to_sign = tlv(0x31, attributes)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        signature = key.sign(to_sign, ec.ECDSA(hashes.SHA256()))
        algorithm = _algorithm("sha256_ecdsa")
    elif isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(to_sign, padding.PKCS1v15(), hashes.SHA256())
        algorithm = _algorithm("sha256_rsa")
    else:
        raise ValueError(f"a content signer cannot be a {type(key).__name__}")
    sha256 = _algorithm("sha256")
    signer_info = tlv(0x30, _VERSION_1 + signer.issuer_and_serial + sha256 + tlv(0xA0, attributes)
                      + algorithm + tlv(0x04, signature))
    encapsulated = _oid(content_type) + (b"" if detached else tlv(0xA0, tlv(0x04, content)))
    signed_data = (_VERSION_3 + tlv(0x31, sha256) + tlv(0x30, encapsulated)
                   + (tlv(0xA0, signer.certificate) if with_certificate else b"") + tlv(0x31, signer_info))
    return tlv(0x30, _oid("1.2.840.113549.1.7.2") + tlv(0xA0, tlv(0x30, signed_data)))


# Version 1 of SignerInfo (issuer and serial); version 3 of SignedData, as the encapsulated
# content is not id-data (RFC 5652 5.1).
_VERSION_1, _VERSION_3 = b"\x02\x01\x01", b"\x02\x01\x03"


@dataclass(frozen=True)
class _Signer:
    """What SignedData says of its signer, encoded once: its certificate, its subject (the
    pivSigner-DN) and its IssuerAndSerialNumber."""

    certificate: bytes
    subject: bytes
    issuer_and_serial: bytes


@lru_cache(maxsize=8)
def _signer(der: bytes) -> _Signer:
    """The signer of ``der`` as SignedData names it, encoded once per signer (it signs every card)."""
    certificate = x509.load_der_x509_certificate(der)
    serial = certificate.serial_number
    number = tlv(0x02, serial.to_bytes(serial.bit_length() // 8 + 1, "big"))
    return _Signer(der, certificate.subject.public_bytes(),
                   tlv(0x30, certificate.issuer.public_bytes() + number))


@lru_cache(maxsize=16)
def _oid(dotted: str) -> bytes:
    """An OBJECT IDENTIFIER, DER."""
    return core.ObjectIdentifier(dotted).dump()


@lru_cache(maxsize=8)
def _algorithm(name: str) -> bytes:
    """An AlgorithmIdentifier (a digest, or a signature with its digest), DER."""
    return (algos.DigestAlgorithm if name == "sha256" else algos.SignedDigestAlgorithm)(
        {"algorithm": name}).dump()


def _attribute(kind: bytes, value: bytes) -> bytes:
    """One signed attribute: its type and a SET OF its one value."""
    return tlv(0x30, kind + tlv(0x31, value))
