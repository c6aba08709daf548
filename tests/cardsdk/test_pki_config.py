"""The certificate profiles file: the shipped defaults follow FIPS 201-3, and every bad value is refused
with the place it sits in the file, before any certificate is signed."""

from __future__ import annotations

import copy
import json

import pytest

from engine.config import Settings
from tasks.cardsdk import pki_config
from tasks.cardsdk.pki_config import PkiConfigError

DEFAULTS = json.loads(pki_config.DEFAULT_PROFILES_FILE.read_text())


def test_the_shipped_profiles_load_and_follow_piv():
    config = pki_config.load()
    assert config.public_base_url == "http://127.0.0.1:5000"
    assert config.crl_url == "http://127.0.0.1:5000/pki/crl"
    card_auth = config.profiles["Card Authentication"]
    assert card_auth.slot == "9E" and card_auth.extended_key_usage_critical
    assert pki_config.ID_PIV_CARD_AUTH in card_auth.extended_key_usage
    for name in pki_config.SAN_REQUIRED:
        assert set(config.profiles[name].subject_alt_name) == {"fascn", "uuid"}
    assert all(profile.policies for profile in config.profiles.values())
    assert set(config.ca_policies) == {oid for p in config.profiles.values() for oid in p.policies}


def changed(path: tuple, value) -> dict:
    document = copy.deepcopy(DEFAULTS)
    target = document
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return document


CARD_AUTH, PIV_AUTH = ("certificates", "Card Authentication"), ("certificates", "PIV Authentication")


@pytest.mark.parametrize(("path", "value", "message"), [
    ((*CARD_AUTH, "policies"), ["1.2.x"], "Card Authentication › policies: '1.2.x'"),
    ((*CARD_AUTH, "policies"), [], "needs at least one policy"),
    ((*CARD_AUTH, "extended_key_usage_critical"), False, "must hold pivCardAuth"),
    ((*CARD_AUTH, "extended_key_usage"), ["clientAuth"], "must hold pivCardAuth"),
    ((*PIV_AUTH, "subject_alt_name"), ["uuid"], "must hold fascn and uuid"),
    ((*PIV_AUTH, "subject_alt_name"), ["fascn", "uuid", "upn"], "'upn' is not one"),
    ((*PIV_AUTH, "subject"), {"CN": "{card_number.__class__}"}, "no other braces"),
    ((*PIV_AUTH, "subject"), {"CN": "x\u0000y"}, "printable"),
    ((*PIV_AUTH, "subject"), {"O": "no CN"}, "'CN' is missing"),
    ((*PIV_AUTH, "subject"), {"CN": "a", "C": "Germany"}, "two-letter country"),
    ((*PIV_AUTH, "slot"), "9C", "slot 9A"),
    ((*PIV_AUTH, "key_usage"), ["keyCertSign"], "'keyCertSign' is not one"),
    ((*PIV_AUTH, "key_usage"), [], "at least one usage"),
    ((*PIV_AUTH, "extended_key_usage"), ["1.3.6.1.5.5.7.3.2; rm -rf"], "not an object"),
    ((*PIV_AUTH, "colour"), "blue", "unknown key 'colour'"),
    (("certificates", "Digital Signature"), KeyError, "'Digital Signature' is missing"),
    (("certificates", "Content Signing", "extended_key_usage"), ["emailProtection"], "pivContentSigning"),
    (("certificates", "Content Signing", "validity_days"), 10 ** 9, "validity_days: must be a whole number"),
    (("crl", "refresh_before_hours"), 500, "less than next_update_hours"),
    (("crl", "next_update_hours"), "168", "must be a whole number"),
    (("ocsp", "answer_validity_hours"), True, "must be a whole number"),
    (("ca", "subject"), {"CN": "{card_number}"}, "may not hold braces"),
    (("ca",), [], "ca: must be an object"),
])
def test_a_bad_value_is_refused_with_its_place(path, value, message):
    with pytest.raises(PkiConfigError, match="certificate profiles file profiles") as refused:
        pki_config.parse(changed(path, value))
    assert message in str(refused.value)


@pytest.mark.parametrize("url", [
    "javascript:alert(1)", "ftp://ca.example", "http://user:pw@ca.example", "http://ca.example/?q=1",
    "http://ca.example/#x", "http://", "http://ca example", "http://ca.example:99999", "http://exämple.org",
    'http://ca.example/"><script>', "",
])
def test_a_public_base_url_that_is_not_a_plain_http_address_is_refused(url):
    with pytest.raises(PkiConfigError, match="CARDFLOW_PUBLIC_BASE_URL"):
        pki_config.parse(DEFAULTS, public_base_url=url)


def test_a_public_base_url_keeps_its_path_without_the_final_slash():
    config = pki_config.parse(DEFAULTS, public_base_url="https://cards.example.org/console/")
    assert config.ocsp_url == "https://cards.example.org/console/pki/ocsp"


def test_an_installation_file_is_read_and_checked(tmp_path):
    own = tmp_path / "profiles.json"
    own.write_text(json.dumps(changed((*PIV_AUTH, "policies"),
                                      ["2.16.840.1.101.3.2.1.3.13"])))
    settings = Settings.from_env({"CARDFLOW_INSTANCE_PATH": str(tmp_path / "i"),
                                  "CARDFLOW_CERTIFICATE_PROFILES": str(own),
                                  "CARDFLOW_PUBLIC_BASE_URL": "https://pki.example.org"})
    config = pki_config.load(settings.certificate_profiles, settings.public_base_url)
    assert [oid.dotted_string for oid in config.profiles["PIV Authentication"].policies] \
        == ["2.16.840.1.101.3.2.1.3.13"]
    assert config.crl_url == "https://pki.example.org/pki/crl"
    own.write_text("{not json")
    with pytest.raises(PkiConfigError, match="profiles.json: not JSON"):
        pki_config.load(own)
    own.write_bytes(b" " * (pki_config.MAX_FILE_BYTES + 1))
    with pytest.raises(PkiConfigError, match="larger than"):
        pki_config.load(own)
    own.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(PkiConfigError, match="not JSON"):
        pki_config.load(own)
    with pytest.raises(PkiConfigError, match="cannot be read"):
        pki_config.load(tmp_path / "missing.json")
