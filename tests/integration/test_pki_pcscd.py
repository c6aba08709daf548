"""The same proof through pcscd and the virtual card process: the replacement card left in the reader
is read with OpenSC, and openssl checks its certificates against the console's CRL (fetched through
the certificate's own distribution point) and OCSP responder; the spoiled card's are refused."""

from __future__ import annotations

import shutil
import subprocess
import threading

import pytest
from werkzeug.serving import make_server

from engine.config import PROJECT_ROOT, StationSettings
from engine.db import unit_of_work
from engine.web.app import create_app
from tasks import orders
from tasks.cardsdk.ca import CERT_FILE, ca_folder
from tasks.cardsdk.piv.testbed import READER
from tests.conftest import make_settings, start_services
from tests.integration.flow import add_cards, order_id, select_and_issue, start, submit
from tests.integration.test_pki_revocation import card_certificate, free_port

pytestmark = pytest.mark.pcscd


@pytest.fixture(scope="module")
def console(pcsc_testbed, tmp_path_factory):
    folder = tmp_path_factory.mktemp("pki-pcscd")
    source = folder / "source"
    for name in ("processes", "forms", "options"):
        shutil.copytree(PROJECT_ROOT / name, source / name)
    settings = make_settings(folder / "instance")
    settings.source_path = source
    settings.station = StationSettings(name="pcsc", transport="pcsc", reader="Virtual PCD*",
                                       virtual_card_state=pcsc_testbed.state_file)
    port = free_port()
    settings.public_base_url = f"http://127.0.0.1:{port}"
    services = start_services(settings)
    server = make_server("127.0.0.1", port, create_app(services=services), threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="pki-console", daemon=True)
    thread.start()
    try:
        add_cards(services, 2)
        instance_id, task = start(services)
        task = select_and_issue(services, instance_id, task, [1, 2])
        task = submit(services, instance_id, task, {"action": "next"})
        oid = order_id(services, instance_id)
        with unit_of_work(services.sessions) as session:
            orders.request_repeat(session, oid, [], {2: "ink smear"})
        task = submit(services, instance_id, task, {"action": "repeat"})
        assert task.bpmn_id == "Activity_Review"
        yield services, settings.public_base_url, oid, folder
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        services.close()


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
