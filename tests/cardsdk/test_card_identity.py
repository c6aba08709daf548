"""Each physical card's identity (GUID, FASC-N) and the signed objects that carry it: the CHUID
signature and the Security Object's hashes verify with ``cryptography`` against the CA."""

from __future__ import annotations

import uuid

import pytest
from cryptography import x509

from tasks.cardsdk import card_objects
from tasks.cardsdk.card_identity import CardIdentityIssuer
from tasks.cardsdk.encoder import Encoder
from tasks.cardsdk.fascn import Fascn
from tasks.cardsdk.piv import profiles
from tasks.cardsdk.piv.apdu import find_tlv
from tasks.cardsdk.piv.client import PivClient
from tasks.cardsdk.piv.errors import EncodingFailedError, StatusWordError, WrongFactoryKeyError
from tasks.cardsdk.piv.transport import VirtualCardSource
from tests.cardsdk.piv_verify import verify_chuid, verify_security_object

# The FASC-N PIV-I issuers use (agency, system and credential 9999/9999/999999), as TIG SCEPACS
# publishes it: an independent check of the packing.
PIV_I_FASCN = bytes.fromhex("d4e739da739ced39ce739d836858210842108421c84210c3eb")
ID_PIV_FASCN = x509.ObjectIdentifier("2.16.840.1.101.3.6.6")


def test_fascn_packs_as_the_published_piv_i_value():
    fascn = Fascn("9999", "9999", "999999", "0", "1", "0000000000", "3", "0000", "1")
    assert fascn.pack() == PIV_I_FASCN
    assert Fascn.unpack(PIV_I_FASCN) == fascn
    assert Fascn.from_digits(fascn.digits) == fascn


@pytest.mark.parametrize(("packed", "reason"), [
    (PIV_I_FASCN[:24], "25 bytes"),
    (PIV_I_FASCN + b"\x00", "25 bytes"),
    (bytes([PIV_I_FASCN[0] ^ 0x01]) + PIV_I_FASCN[1:], "parity"),
    (bytes(25), "parity"),
    # Two bits of the first agency digit flipped: its parity holds, the LRC does not.
    ((int.from_bytes(PIV_I_FASCN, "big") ^ (0b11 << 193)).to_bytes(25, "big"), "redundancy"),
])
def test_a_damaged_fascn_is_refused(packed, reason):
    with pytest.raises(ValueError, match=reason):
        Fascn.unpack(packed)


@pytest.mark.parametrize("field", ["agency_code", "system_code", "credential_number"])
@pytest.mark.parametrize("value", ["12a4", "", "1234567", "١٢٣٤", None, "12 4"])
def test_a_fascn_field_takes_only_its_digits(field, value):
    fields = {"agency_code": "1234", "system_code": "5678", "credential_number": "000017"}
    with pytest.raises(ValueError, match="digits"):
        Fascn(**{**fields, field: value})


def test_every_attempt_gets_a_fresh_guid_and_a_new_credential_series():
    issuer = CardIdentityIssuer("1234", "5678")
    first, again, replacement = issuer.new(17, 0), issuer.new(17, 0), issuer.new(17, 1)
    assert len({first.card_uuid, again.card_uuid, replacement.card_uuid}) == 3
    assert all(identity.card_uuid.version == 4 for identity in (first, again, replacement))
    assert (first.fascn.agency_code, first.fascn.system_code, first.fascn.credential_number) == (
        "1234", "5678", "000017")
    assert (first.fascn.credential_series, first.fascn.individual_credential_issue) == ("0", "1")
    assert (replacement.fascn.credential_series, replacement.fascn.individual_credential_issue) == ("1", "1")
    eleventh = issuer.new(17, 10).fascn
    assert (eleventh.credential_series, eleventh.individual_credential_issue) == ("0", "2")
    # Every physical card of a card up to the limit has a FASC-N of its own.
    assert len({issuer.new(17, n).fascn.digits for n in range(90)}) == 90


@pytest.mark.parametrize(("card_id", "earlier", "reason"), [
    (1_000_000, 0, "six digits"),
    (0, 0, "six digits"),
    (5, 90, "90 physical cards"),
])
def test_a_card_beyond_the_fascn_gets_no_fascn_and_a_reason(card_id, earlier, reason):
    identity = CardIdentityIssuer().new(card_id, earlier)
    assert identity.fascn is None and identity.fascn_digits is None and reason in identity.problem


@pytest.mark.parametrize("env", [
    {"CARDFLOW_FASCN_AGENCY_CODE": "12345"},
    {"CARDFLOW_FASCN_SYSTEM_CODE": "12x4"},
    {"CARDFLOW_FASCN_AGENCY_CODE": "-123"},
])
def test_bad_issuer_codes_are_refused_by_name(env):
    with pytest.raises(ValueError, match=next(iter(env))):
        CardIdentityIssuer.from_env(env)


def test_issuer_codes_come_from_the_environment():
    issuer = CardIdentityIssuer.from_env({"CARDFLOW_FASCN_AGENCY_CODE": " 0042 ",
                                          "CARDFLOW_FASCN_SYSTEM_CODE": "0007"})
    assert (issuer.agency_code, issuer.system_code) == ("0042", "0007")
    assert CardIdentityIssuer.from_env({}) == CardIdentityIssuer("9999", "9999")


def open_card(card) -> PivClient:
    client = PivClient(card.transmit)
    client.select()
    return client


def test_chuid_and_security_object_verify_against_the_ca(encoder, ca, make_job):
    job = make_job(certificates=("PIV Authentication", "Digital Signature", "Key Management"))
    encoder.encode(job)
    client = open_card(encoder.card_source.last_card)
    chuid = verify_chuid(client.get_object(profiles.OBJECT_CHUID), ca.certificate)
    assert chuid[0x30] == job.fascn and uuid.UUID(bytes=chuid[0x34]) == job.card_uuid
    # The CHUID expires with the card (the option's validity).
    assert chuid[0x35] == job.valid_until.strftime("%Y%m%d").encode()
    groups = verify_security_object(client.get_object(card_objects.OBJECT_SECURITY), ca.certificate,
                                    client.get_object)
    certificate_objects = {profiles.SLOTS[name]["object"] for name in profiles.SLOTS}
    assert set(groups.values()) == certificate_objects | {profiles.OBJECT_CHUID, profiles.OBJECT_CCC}
    # The CCC's card identifier ends with the card's GUID.
    assert find_tlv(client.get_object(profiles.OBJECT_CCC), 0xF0)[7:] == job.card_uuid.bytes[:14]
    # The PIV and Card Authentication certificates name the same card (FIPS 201-3 4.2.2).
    for name in ("PIV Authentication", "Card Authentication"):
        der = find_tlv(client.get_object(profiles.SLOTS[name]["object"]), 0x70)
        names = x509.load_der_x509_certificate(der).extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value
        assert job.card_uuid.urn in names.get_values_for_type(x509.UniformResourceIdentifier)
        fascn = [other.value for other in names.get_values_for_type(x509.OtherName)
                 if other.type_id == ID_PIV_FASCN]
        assert fascn == [b"\x04\x19" + job.fascn]


def test_a_changed_object_no_longer_matches_the_security_object(encoder, ca, make_job):
    encoder.encode(make_job())
    card = encoder.card_source.last_card
    tampered = bytearray(card.objects[profiles.OBJECT_CCC])
    tampered[-3] ^= 0x01
    card.objects[profiles.OBJECT_CCC] = bytes(tampered)
    client = open_card(card)
    with pytest.raises(AssertionError, match=f"{profiles.OBJECT_CCC:06X}"):
        verify_security_object(client.get_object(card_objects.OBJECT_SECURITY), ca.certificate,
                               client.get_object)


def test_a_job_without_fascn_is_refused_before_the_card(encoder, make_job):
    job = make_job(fascn=None, identity_problem="Card id 1000000 does not fit the six digits.")
    with pytest.raises(EncodingFailedError, match="does not fit the six digits"):
        encoder.encode(job)
    assert encoder.card_source.last_card is None


def test_card_authentication_comes_with_every_encoded_card(encoder, make_job):
    result = encoder.encode(make_job(certificates=()))
    client = open_card(encoder.card_source.last_card)
    assert len(result.certificate_serials) == 1
    assert client.get_object(profiles.SLOTS["Card Authentication"]["object"]) is not None
    assert client.get_object(profiles.SLOTS["PIV Authentication"]["object"]) is None


def test_a_stock_with_a_fixed_key_and_one_way_authentication(ca, custody, make_job):
    profile = profiles.get("piv-aes128-fixed-key")
    source = VirtualCardSource(profile)
    encoder = Encoder(source, ca, custody, profile)
    job = make_job(21)
    encoder.encode(job)
    card = source.last_card
    # The key cannot change: custody keeps the maker's key, and the card still takes it, one way only.
    assert custody.management_key(21) == profile.management_key == card.management_key
    client = open_card(card)
    client.authenticate(profile.management_key, "AES128", mutual=False)
    with pytest.raises(StatusWordError) as refused:
        client.authenticate(profile.management_key, "AES128", mutual=True)
    assert refused.value.sw == 0x6A81
    # The retry counters are the stock's: 5 PIN tries, 10 PUK tries.
    assert (card.pin_tries, card.puk_tries) == (5, 10)
    verify_chuid(client.get_object(profiles.OBJECT_CHUID), ca.certificate)


def test_the_default_stock_refuses_the_factory_key_after_encoding(encoder, custody, make_job):
    encoder.encode(make_job(22))
    client = open_card(encoder.card_source.last_card)
    with pytest.raises(WrongFactoryKeyError):
        client.authenticate(profiles.get("piv-3des-p256").management_key, "3DES")
    client.authenticate(custody.management_key(22), "3DES")


@pytest.mark.parametrize("code", ["12", "99999", "12a4"])
def test_the_cli_says_which_fascn_setting_is_wrong(tmp_path, code):
    from click.testing import CliRunner

    from engine.cli import main
    from engine.config import PROJECT_ROOT

    env = {"CARDFLOW_INSTANCE_PATH": str(tmp_path / "instance"), "CARDFLOW_SOURCE_PATH": str(PROJECT_ROOT),
           "CARDFLOW_FASCN_SYSTEM_CODE": code}
    result = CliRunner().invoke(main, ["init"], env=env)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)  # a message, no trace
    assert f"CARDFLOW_FASCN_SYSTEM_CODE must be 4 digits (0000 to 9999), not '{code}'." in result.output
    assert "Traceback" not in result.output
