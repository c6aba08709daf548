"""The encoder personalises a blank card end to end, and fails cleanly when the card misbehaves."""

from __future__ import annotations

import pytest
from cryptography import x509
from sqlalchemy import func, select

from tasks.cardsdk import card_objects
from tasks.cardsdk.encoder import Encoder, certificate_types
from tasks.cardsdk.job import CardSdkError
from tasks.cardsdk.piv import profiles
from tasks.cardsdk.piv.apdu import find_tlv, parse_tlv
from tasks.cardsdk.piv.client import PivClient
from tasks.cardsdk.piv.errors import (
    CardRemovedError,
    EncodingFailedError,
    MalformedResponseError,
    StatusWordError,
    WrongFactoryKeyError,
)
from tasks.cardsdk.piv.transport import VirtualCardSource
from tasks.cardsdk.piv.virtual_card import VirtualPivCard
from tasks.cardsdk.records import CustodySecret, IssuedCertificate
from tests.cardsdk.faults import FaultyCard, FaultySource

PROFILE = profiles.get("piv-3des-p256")


def open_card(card: VirtualPivCard) -> PivClient:
    """A client on ``card`` with PIV selected."""
    client = PivClient(card.transmit)
    client.select()
    return client


def test_encode_personalises_the_card(encoder, custody, ca, sessions, make_job):
    job = make_job()
    result = encoder.encode(job)
    card = encoder.card_source.last_card
    client = open_card(card)
    assert result.chip_serial == str(card.serial)
    secrets = custody.release(job.card_id)
    assert len(secrets["pin"]) == 6 and secrets["pin"].isdigit() and len(secrets["puk"]) == 8
    client.verify_pin(secrets["pin"])
    with pytest.raises(WrongFactoryKeyError):
        client.authenticate(PROFILE.management_key, "3DES")
    client.authenticate(custody.management_key(job.card_id), "3DES")
    ca_cert = ca.certificate
    assert certificate_types(job) == ("PIV Authentication", "Digital Signature", "Card Authentication")
    for certificate_type, serial in zip(certificate_types(job), result.certificate_serials, strict=True):
        stored = client.get_object(profiles.SLOTS[certificate_type]["object"])
        assert [tag for tag, _ in parse_tlv(stored)] == [0x70, 0x71, 0xFE]
        certificate = x509.load_der_x509_certificate(find_tlv(stored, 0x70))
        certificate.verify_directly_issued_by(ca_cert)
        assert f"{certificate.serial_number:X}" == serial
        if certificate_type == "PIV Authentication":
            assert certificate.subject.rfc4514_string() == f"CN={job.card_number}"
    chuid = client.get_object(profiles.OBJECT_CHUID)
    assert find_tlv(chuid, 0x34) == job.card_uuid.bytes
    assert find_tlv(chuid, 0x30) == job.fascn
    assert find_tlv(chuid, 0x35) == job.valid_until.strftime("%Y%m%d").encode()
    assert find_tlv(client.get_object(profiles.OBJECT_CCC), 0xF1) == b"\x21"
    with sessions() as session:
        rows = session.scalars(select(IssuedCertificate).order_by(IssuedCertificate.slot)
                               .where(IssuedCertificate.attempt_ref == job.attempt_ref)).all()
    assert [(row.slot, row.revoked_at) for row in rows] == [("9A", None), ("9C", None), ("9E", None)]


def test_an_order_of_cards_gets_distinct_secrets(encoder, custody, make_job):
    pins = set()
    for card_id in (1, 2, 3):
        encoder.encode(make_job(card_id, certificates=("PIV Authentication",), pin_length=8))
        pins.add(custody.release(card_id)["pin"])
        assert len(custody.release(card_id)["pin"]) == 8
    assert len(pins) == 3


def test_rsa_profile_and_aes_management_key(ca, custody, make_job):
    for profile, algorithm in (("piv-3des-rsa", "3DES"), ("piv-aes192-p256", "AES192")):
        source = VirtualCardSource(profiles.get(profile))
        encoder = Encoder(source, ca, custody, profiles.get(profile))
        job = make_job(5, attempt_ref=f"{profile}-1", certificates=("PIV Authentication",))
        encoder.encode(job)
        client = open_card(source.last_card)
        client.authenticate(custody.management_key(5, job.attempt_ref), algorithm)


def test_revoke_attempt_puts_the_certificates_in_the_crl(encoder, ca, make_job):
    job = make_job()
    result = encoder.encode(job)
    assert sorted(encoder.revoke_attempt(job.attempt_ref, "misprint")) == sorted(result.certificate_serials)
    crl = x509.load_pem_x509_crl(ca.crl())
    assert {f"{entry.serial_number:X}" for entry in crl} == set(result.certificate_serials)
    assert encoder.revoke_attempt(job.attempt_ref, "misprint") == []


def test_jobs_the_card_stock_cannot_take_are_refused_before_the_card(encoder, make_job):
    with pytest.raises(EncodingFailedError, match="PIN of 9 digits"):
        encoder.encode(make_job(pin_length=9))
    assert encoder.card_source.last_card is None


@pytest.mark.parametrize(
    "ins,answer,occurrence,error,message",
    [
        (0x87, bytes.fromhex("6982"), 2, WrongFactoryKeyError, "refused the management key"),
        (0x24, bytes.fromhex("6A80"), 1, StatusWordError, "Changing the PIN: the card answered 6A80"),
        (0x47, bytes.fromhex("6982"), 1, StatusWordError, "slot 9A: the card answered 6982"),
        (0x47, bytes.fromhex("7f4905ff9000"), 2, MalformedResponseError, "malformed"),
        (0xDB, bytes.fromhex("6A84"), 2, StatusWordError, "not enough memory"),
        (0xDB, b"\x90", 1, MalformedResponseError, "too short"),
        (0xDB, None, 2, CardRemovedError, "removed during encoding"),
        (0xFF, None, 1, CardRemovedError, "removed during encoding"),
    ],
)
def test_card_faults_give_readable_errors_and_revoke(
    ca, custody, make_job, ins, answer, occurrence, error, message
):
    encoder = Encoder(FaultySource(FaultyCard(ins, answer, occurrence)), ca, custody, PROFILE)
    job = make_job()
    with pytest.raises(error, match=message) as raised:
        encoder.encode(job)
    assert isinstance(raised.value, CardSdkError)
    crl = x509.load_pem_x509_crl(ca.crl())
    # Every key is generated before the CA issues the card's certificates (in one transaction,
    # with the card's secrets), so a fault while generating any key leaves nothing issued; a
    # fault later (the PIN change included) revokes them.
    issued_before_fault = ins in (0x24, 0xDB, 0xFF)
    assert (len(list(crl)) > 0) == issued_before_fault


def test_garbage_public_key_is_a_card_error(ca, custody, make_job):
    card = FaultyCard(0x47, bytes.fromhex("7f490586030411229000"))
    encoder = Encoder(FaultySource(card), ca, custody, PROFILE)
    with pytest.raises(MalformedResponseError, match="unusable public key"):
        encoder.encode(make_job())


def test_unexpected_exceptions_become_card_sdk_errors(encoder, make_job, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(card_objects, "security_object", explode)
    with pytest.raises(EncodingFailedError, match="unexpected error \\(RuntimeError\\)"):
        encoder.encode(make_job())


def test_a_custody_failure_issues_no_certificate(encoder, ca, sessions, make_job, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(encoder.custody, "store_in", explode)
    refused = "Custody could not store the card's secrets \\(RuntimeError\\)"
    with pytest.raises(EncodingFailedError, match=refused) as raised:
        encoder.encode(make_job())
    assert "disk on fire" not in str(raised.value)
    with sessions() as session:  # the secrets and the certificates commit together, or neither
        assert session.scalar(select(func.count()).select_from(IssuedCertificate)) == 0
        assert session.scalar(select(func.count()).select_from(CustodySecret)) == 0
