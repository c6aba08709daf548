"""The same proof through pcscd and the virtual card process: the replacement card left in the reader
is read with OpenSC, and openssl checks its certificates against the console's CRL (fetched through
the certificate's own distribution point) and OCSP responder; the spoiled card's are refused."""

from __future__ import annotations

import subprocess

import pytest

from engine.config import StationSettings
from tasks.cardsdk.ca import CERT_FILE, ca_folder
from tasks.cardsdk.piv.testbed import READER
from tests.conftest import make_settings
from tests.integration.pki_console import copy_sources, misprinted_order_console
from tests.integration.test_pki_revocation import card_certificate

pytestmark = pytest.mark.pcscd


@pytest.fixture(scope="module")
def console(pcsc_testbed, tmp_path_factory):
    folder = tmp_path_factory.mktemp("pki-pcscd")
    settings = make_settings(folder / "instance")
    settings.source_path = copy_sources(folder / "source")
    settings.station = StationSettings(name="pcsc", transport="pcsc", reader="Virtual PCD*",
                                       virtual_card_state=pcsc_testbed.state_file)
    with misprinted_order_console(settings, "ink smear") as (services, oid):
        yield services, settings.public_base_url, oid, folder


def run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("object_id", "kind"), [("01", "PIV Authentication"), ("04", "Card Authentication")])
def test_the_card_in_the_reader_passes_and_the_spoiled_one_is_refused(console, object_id, kind):
    services, base, oid, folder = console
    ca_pem = str(ca_folder(services.settings.instance_path) / CERT_FILE)
    read = run("pkcs15-tool", "--reader", READER, "--read-certificate", object_id)
    assert read.returncode == 0, read.stderr
    on_card = folder / f"card-{object_id}.pem"
    on_card.write_text(read.stdout)
    remade = card_certificate(services, oid, 2, kind)
    assert remade.pem.strip() == read.stdout.strip()  # the reader holds the replacement
    spoiled = folder / f"spoiled-{object_id}.pem"
    spoiled.write_text(card_certificate(services, oid, 1, kind).pem)

    accepted = run("openssl", "verify", "-crl_check", "-crl_download", "-CAfile", ca_pem, str(on_card))
    assert accepted.returncode == 0 and ": OK" in accepted.stdout, accepted.stdout + accepted.stderr
    refused = run("openssl", "verify", "-crl_check", "-crl_download", "-CAfile", ca_pem, str(spoiled))
    assert refused.returncode != 0 and "certificate revoked" in refused.stdout + refused.stderr
    for pem, expected in ((on_card, "good"), (spoiled, "revoked")):
        asked = run("openssl", "ocsp", "-issuer", ca_pem, "-CAfile", ca_pem, "-cert", str(pem),
                    "-url", f"{base}/pki/ocsp")
        output = asked.stdout + asked.stderr
        assert asked.returncode == 0 and "Response verify OK" in output, output
        assert f"{pem}: {expected}" in output, output
