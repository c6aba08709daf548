"""The local CA: protected key, PIV certificate profiles, recorded issuance, CRL."""

from __future__ import annotations

import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from sqlalchemy import select

from tasks.cardsdk.ca import ID_PIV_CARD_AUTH, KEY_FILE, LocalCA
from tasks.cardsdk.piv.errors import CaRefusedError
from tasks.cardsdk.records import IssuedCertificate

CA_PASSPHRASE = "test passphrase"


def test_init_writes_an_encrypted_key_only_the_owner_can_read(tmp_path, sessions):
    LocalCA.init(tmp_path / "ca", CA_PASSPHRASE)
    key_file = tmp_path / "ca" / KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert b"ENCRYPTED" in key_file.read_bytes()
    with pytest.raises(TypeError):
        serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    with pytest.raises(CaRefusedError, match="already exists"):
        LocalCA.init(tmp_path / "ca", CA_PASSPHRASE)
    with pytest.raises(CaRefusedError, match="passphrase"):
        LocalCA(tmp_path / "ca", "wrong", sessions)
    with pytest.raises(CaRefusedError, match="ca init"):
        LocalCA(tmp_path / "nowhere", CA_PASSPHRASE, sessions)


def test_certificate_profiles_follow_piv(ca):
    ec_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    auth = ca.issue(ec_key, "TC-1", "PIV Authentication", 14, "a-1")
    assert auth.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    assert (
        ExtendedKeyUsageOID.CLIENT_AUTH
        in auth.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    )
    sign = ca.issue(ec_key, "TC-1", "Digital Signature", 14, "a-1")
    assert sign.extensions.get_extension_for_class(x509.KeyUsage).value.content_commitment
    km_rsa = ca.issue(rsa_key, "TC-1", "Key Management", 14, "a-1")
    assert km_rsa.extensions.get_extension_for_class(x509.KeyUsage).value.key_encipherment
    km_ec = ca.issue(ec_key, "TC-1", "Key Management", 14, "a-1")
    assert km_ec.extensions.get_extension_for_class(x509.KeyUsage).value.key_agreement
    card_auth = ca.issue(ec_key, "TC-1", "Card Authentication", 14, "a-1")
    assert ID_PIV_CARD_AUTH in card_auth.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert (auth.not_valid_after_utc - auth.not_valid_before_utc).days == 14
    for certificate in (auth, sign, km_rsa, km_ec, card_auth):
        certificate.verify_directly_issued_by(ca.certificate)


def test_every_issuance_is_recorded_and_revocation_reaches_the_crl(ca, sessions):
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    first = ca.issue(key, "TC-1", "PIV Authentication", 14, "attempt-1", card_number="TC-1")
    second = ca.issue(key, "TC-1", "PIV Authentication", 14, "attempt-2", card_number="TC-1")
    with sessions() as session:
        rows = session.scalars(select(IssuedCertificate).order_by(IssuedCertificate.id)).all()
    assert [(row.attempt_ref, row.card_number, row.slot) for row in rows] == [
        ("attempt-1", "TC-1", "9A"),
        ("attempt-2", "TC-1", "9A"),
    ]
    assert ca.revoke_attempt("attempt-1", "keyCompromise") == [f"{first.serial_number:X}"]
    crl = x509.load_pem_x509_crl(ca.crl())
    assert crl.is_signature_valid(ca.certificate.public_key())
    entry = crl.get_revoked_certificate_by_serial_number(first.serial_number)
    assert (
        entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
        == x509.ReasonFlags.key_compromise
    )
    assert crl.get_revoked_certificate_by_serial_number(second.serial_number) is None


def test_the_ca_refuses_unknown_profiles_and_silly_validity(ca):
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(CaRefusedError, match="no certificate profile"):
        ca.issue(key, "TC-1", "Retina Scan", 14, "a-1")
    with pytest.raises(CaRefusedError, match="validity"):
        ca.issue(key, "TC-1", "PIV Authentication", 0, "a-1")


def test_a_cards_certificates_are_recorded_together_under_one_guard_check(ca, sessions):
    keys = [ec.generate_private_key(ec.SECP256R1()).public_key() for _ in range(2)]
    requests = list(zip(keys, ("PIV Authentication", "Card Authentication"), strict=True))
    checks = []
    issued = ca.issue_card(requests, "TC-1", 14, "a-1", record_with=checks.append)
    assert len(checks) == 1 and len(issued) == 2
    assert [certificate.public_key() for certificate in issued] == keys

    def refuse(_session):
        raise CaRefusedError("the claim lapsed")

    with pytest.raises(CaRefusedError, match="claim lapsed"):
        ca.issue_card(requests, "TC-1", 14, "a-2", record_with=refuse)
    with sessions() as session:
        recorded = session.scalars(select(IssuedCertificate.attempt_ref)).all()
    assert sorted(recorded) == ["a-1", "a-1"], "a refused card records none of its certificates"
