"""CMS SignedData as PIV signs its data objects (SP 800-73-4, FIPS 201-3 4.2.1 and 4.2.6).

One signer, identified by issuer and serial number; signed attributes content type, message
digest and pivSigner-DN; SHA-256. The CHUID's signature is detached (its content is the CHUID
itself) and carries the signer's certificate; the Security Object's encapsulates its content and
leaves the certificate to the CHUID, as a relying party takes it from there for every object the
same signer signed.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from asn1crypto import algos, cms, core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

# id-PIV-CHUIDSecurityObject, id-icao-ldsSecurityObject, pivSigner-DN.
ID_PIV_CHUID_SECURITY_OBJECT = "2.16.840.1.101.3.6.1"
ID_ICAO_LDS_SECURITY_OBJECT = "2.23.136.1.1.1"
ID_PIV_SIGNER_DN = "2.16.840.1.101.3.6.5"

SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def sign(content: bytes, content_type: str, key: SigningKey, certificate: x509.Certificate,
         detached: bool, with_certificate: bool = True) -> bytes:
    """A DER ContentInfo holding SignedData over ``content`` by ``key`` (``certificate``'s key),
    with ``certificate`` in it unless ``with_certificate`` is false."""
    signer = _parsed(certificate.public_bytes(serialization.Encoding.DER))
    attributes = cms.CMSAttributes([
        cms.CMSAttribute({"type": "content_type", "values": [content_type]}),
        cms.CMSAttribute({"type": "message_digest", "values": [hashlib.sha256(content).digest()]}),
        cms.CMSAttribute({"type": ID_PIV_SIGNER_DN, "values": [signer.subject]}),
    ])
    # What is signed is the DER SET OF the attributes (RFC 5652 5.4), sorted as DER wants.
    to_sign = attributes.dump()
    if isinstance(key, ec.EllipticCurvePrivateKey):
        signature = key.sign(to_sign, ec.ECDSA(hashes.SHA256()))
        algorithm = "sha256_ecdsa"
    elif isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(to_sign, padding.PKCS1v15(), hashes.SHA256())
        algorithm = "sha256_rsa"
    else:
        raise ValueError(f"a content signer cannot be a {type(key).__name__}")
    signer_info = cms.SignerInfo({
        "version": "v1",
        "sid": cms.SignerIdentifier({"issuer_and_serial_number": cms.IssuerAndSerialNumber({
            "issuer": signer.issuer, "serial_number": signer.serial_number})}),
        "digest_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
        "signed_attrs": attributes,
        "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": algorithm}),
        "signature": signature,
    })
    encapsulated = {"content_type": content_type}
    if not detached:
        encapsulated["content"] = core.ParsableOctetString(content)
    fields = {
        # Version 3: the encapsulated content is not id-data (RFC 5652 5.1).
        "version": "v3",
        "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
        "encap_content_info": cms.EncapsulatedContentInfo(encapsulated),
        "signer_infos": [signer_info],
    }
    if with_certificate:
        fields["certificates"] = [signer]
    signed_data = cms.SignedData(fields)
    return cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump()


@lru_cache(maxsize=8)
def _parsed(der: bytes) -> asn1_x509.Certificate:
    """The signer's certificate as asn1crypto sees it, parsed once per signer (it signs every card)."""
    return asn1_x509.Certificate.load(der)
