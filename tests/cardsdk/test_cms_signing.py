"""CMS SignedData as the CHUID and the Security Object carry it, written as DER by hand: the
bytes are canonical DER, say what asn1crypto's own encoding of the same structure says, and the
signature verifies over the signed attributes."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from asn1crypto import algos, cms, core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from tasks.cardsdk import cms_signing

CONTENT = b"\x30\x19" + bytes(25) + b"\x34\x10" + bytes(range(16))


def signer(key, serial: int) -> x509.Certificate:
    """A content signer's certificate (the serial decides whether its INTEGER needs a 00 first)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Content signer"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme")])
    now = datetime.now(UTC)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(serial).not_valid_before(now).not_valid_after(now + timedelta(days=3))
            .sign(key, hashes.SHA256()))


def reference(content, content_type, certificate, detached, with_certificate, algorithm, signature):
    """The same SignedData built field by field with asn1crypto (the earlier implementation)."""
    parsed = asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))
    attributes = cms.CMSAttributes([
        cms.CMSAttribute({"type": "content_type", "values": [content_type]}),
        cms.CMSAttribute({"type": "message_digest", "values": [hashlib.sha256(content).digest()]}),
        cms.CMSAttribute({"type": cms_signing.ID_PIV_SIGNER_DN, "values": [parsed.subject]}),
    ])
    info = cms.SignerInfo({
        "version": "v1",
        "sid": cms.SignerIdentifier({"issuer_and_serial_number": cms.IssuerAndSerialNumber({
            "issuer": parsed.issuer, "serial_number": parsed.serial_number})}),
        "digest_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
        "signed_attrs": attributes,
        "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": algorithm}),
        "signature": signature,
    })
    encapsulated = {"content_type": content_type}
    if not detached:
        encapsulated["content"] = core.ParsableOctetString(content)
    fields = {"version": "v3", "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
              "encap_content_info": cms.EncapsulatedContentInfo(encapsulated), "signer_infos": [info]}
    if with_certificate:
        fields["certificates"] = [parsed]
    return cms.ContentInfo({"content_type": "signed_data", "content": cms.SignedData(fields)}).dump()


@pytest.mark.parametrize("serial", [0x1234, 0x80FF, 2**159 - 1])
@pytest.mark.parametrize("detached,with_certificate,content_type", [
    (True, True, cms_signing.ID_PIV_CHUID_SECURITY_OBJECT),
    (False, False, cms_signing.ID_ICAO_LDS_SECURITY_OBJECT),
])
@pytest.mark.parametrize("kind", ["ec", "rsa"])
def test_signed_data_is_the_der_asn1crypto_writes_and_its_signature_verifies(
        serial, detached, with_certificate, content_type, kind):
    key = ec.generate_private_key(ec.SECP256R1()) if kind == "ec" \
        else rsa.generate_private_key(public_exponent=65537, key_size=2048)
    certificate = signer(key, serial)
    der = cms_signing.sign(CONTENT, content_type, key, certificate, detached, with_certificate)
    info = cms.ContentInfo.load(der)
    assert info.dump(force=True) == der, "canonical DER"
    signer_info = info["content"]["signer_infos"][0]
    signature = signer_info["signature"].native
    algorithm = "sha256_ecdsa" if kind == "ec" else "sha256_rsa"
    expected = reference(CONTENT, content_type, certificate, detached, with_certificate, algorithm, signature)
    assert der == expected
    signed = signer_info["signed_attrs"].untag().dump(force=True)
    if kind == "ec":
        key.public_key().verify(signature, signed, ec.ECDSA(hashes.SHA256()))
    else:
        key.public_key().verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
