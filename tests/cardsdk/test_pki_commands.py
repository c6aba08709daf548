"""`cardflow ca` with the certificate profiles: init takes the CA's subject and policies from them,
publish signs a CRL, profiles checks the file, and a bad file is one clear line."""

from __future__ import annotations

import json
from types import SimpleNamespace

from click.testing import CliRunner
from cryptography import x509

from tasks.cardsdk import pki_config
from tasks.cardsdk.commands import ca, ca_folder


def context(tmp_path, sessions, profiles=None, url="https://pki.example.org"):
    settings = SimpleNamespace(ca_passphrase="cli pass", certificate_profiles=profiles, public_base_url=url)
    return SimpleNamespace(instance_path=tmp_path, sessions=sessions, settings=settings)


def test_init_uses_the_profiles_and_publish_numbers_the_crl(tmp_path, sessions):
    document = json.loads(pki_config.DEFAULT_PROFILES_FILE.read_text())
    document["ca"]["subject"] = {"CN": "Example Badge CA", "O": "Example", "C": "DE"}
    own = tmp_path / "profiles.json"
    own.write_text(json.dumps(document))
    obj, runner = context(tmp_path, sessions, own), CliRunner()
    assert runner.invoke(ca, ["init"], obj=obj).exit_code == 0
    certificate = x509.load_pem_x509_certificate((ca_folder(tmp_path) / "ca.pem").read_bytes())
    assert certificate.subject.rfc4514_string() == "C=DE,O=Example,CN=Example Badge CA"
    policies = certificate.extensions.get_extension_for_class(x509.CertificatePolicies).value
    assert [p.policy_identifier for p in policies] == list(pki_config.parse(document).ca_policies)
    first = runner.invoke(ca, ["publish"], obj=obj)
    second = runner.invoke(ca, ["publish"], obj=obj)
    assert (first.output, second.output) == ("CRL 1 published\n", "CRL 2 published\n")
    shown = runner.invoke(ca, ["profiles"], obj=obj)
    assert shown.exit_code == 0 and "OCSP https://pki.example.org/pki/ocsp" in shown.output
    assert "Card Authentication: slot 9E; key usage digitalSignature; extended pivCardAuth (critical)" \
        in shown.output


def test_a_bad_profiles_file_or_url_is_one_line_and_changes_nothing(tmp_path, sessions):
    own = tmp_path / "profiles.json"
    own.write_text('{"ca": {}}')
    runner = CliRunner()
    refused = runner.invoke(ca, ["init"], obj=context(tmp_path, sessions, own))
    assert refused.exit_code != 0
    assert refused.output == ("Error: certificate profiles file profiles.json: the top level: "
                              "'certificates' is missing.\n")
    assert "Traceback" not in refused.output and not ca_folder(tmp_path).exists()
    refused = runner.invoke(ca, ["profiles"], obj=context(tmp_path, sessions, url="file:///etc/passwd"))
    assert refused.exit_code != 0 and "CARDFLOW_PUBLIC_BASE_URL must be" in refused.output


def test_a_bad_public_base_url_stops_the_product_with_one_line(tmp_path):
    from engine.cli import main

    env = {"CARDFLOW_INSTANCE_PATH": str(tmp_path / "instance"),
           "CARDFLOW_PUBLIC_BASE_URL": "http://console.example/?next=javascript:alert(1)"}
    result = CliRunner().invoke(main, ["deploy", "--check"], env=env)
    assert result.exit_code == 1
    assert result.output.startswith("Error: CARDFLOW_PUBLIC_BASE_URL must be an http:// or https:// address")
    assert "Traceback" not in result.output
