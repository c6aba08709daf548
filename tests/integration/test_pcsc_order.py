"""The operator's order, encoding through pcscd and the virtual card process with two certificate
types; then independent PIV software (OpenSC, openssl, yubico-piv-tool) checks the last card."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from sqlalchemy import select

from engine.config import PROJECT_ROOT, StationSettings
from tasks.cardsdk.ca import CERT_FILE, ca_folder
from tasks.cardsdk.piv import profiles
from tasks.cardsdk.piv.client import PivClient
from tasks.cardsdk.piv.errors import WrongFactoryKeyError
from tasks.cardsdk.piv.testbed import READER
from tasks.cardsdk.piv.transport import PcscTransport
from tasks.store import ProductionAttempt
from tests.conftest import make_settings, start_services
from tests.integration.flow import add_cards, card_states, select_and_issue, start, submit

pytestmark = pytest.mark.pcscd


@pytest.fixture(scope="module")
def testbed(pcsc_testbed):
    return pcsc_testbed


@pytest.fixture(scope="module")
def produced(testbed, tmp_path_factory):
    """An order of two cards produced through pcscd; the second card stays in the reader."""
    folder = tmp_path_factory.mktemp("order")
    source = folder / "source"
    for name in ("processes", "forms", "options"):
        shutil.copytree(PROJECT_ROOT / name, source / name)
    script = source / "options" / "TempCardsScriptOptions"
    both = 'certificates = ["PIV Authentication", "Digital Signature"]'
    script.write_text(script.read_text().replace('certificates = ["PIV Authentication"]', both))
    settings = make_settings(folder / "instance")
    settings.source_path = source
    settings.station = StationSettings(name="pcsc", transport="pcsc", reader="Virtual PCD*",
                                       virtual_card_state=testbed.state_file)
    services = start_services(settings)
    add_cards(services, 2)
    instance_id, task = start(services)
    task = select_and_issue(services, instance_id, task, [1, 2])
    task = submit(services, instance_id, task, {"action": "next"})
    assert task.bpmn_id == "Activity_Review"
    yield services
    services.close()


def run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_order_produces_both_cards(produced):
    assert card_states(produced) == {"TC-000001": "unassigned", "TC-000002": "unassigned"}


def test_opensc_lists_certificates_that_verify_against_the_ca(produced, tmp_path):
    listing = run("pkcs15-tool", "--reader", READER, "--list-certificates")
    assert listing.returncode == 0, listing.stderr
    assert "Certificate for PIV Authentication" in listing.stdout
    assert "Certificate for Digital Signature" in listing.stdout
    ca_pem = ca_folder(produced.settings.instance_path) / CERT_FILE
    for object_id in ("01", "02"):  # PIV Authentication (9A), Digital Signature (9C)
        read = run("pkcs15-tool", "--reader", READER, "--read-certificate", object_id)
        assert read.returncode == 0, read.stderr
        pem = tmp_path / f"{object_id}.pem"
        pem.write_text(read.stdout)
        verified = run("openssl", "verify", "-CAfile", str(ca_pem), str(pem))
        assert verified.returncode == 0 and ": OK" in verified.stdout, verified.stdout + verified.stderr
        subject = run("openssl", "x509", "-in", str(pem), "-noout", "-subject")
        assert "TC-000002" in subject.stdout


def test_custody_pin_verifies_and_factory_key_is_gone(produced):
    custody = produced.station.encoder.custody
    secrets = custody.release(2)
    wrong = run("pkcs15-tool", "--reader", READER, "--verify-pin", "--auth-id", "01", "--pin", "00000000")
    assert wrong.returncode != 0
    right = run("pkcs15-tool", "--reader", READER, "--verify-pin", "--auth-id", "01", "--pin", secrets["pin"])
    assert right.returncode == 0, right.stdout + right.stderr
    profile = profiles.get("piv-3des-p256")
    transport = PcscTransport(READER)
    try:
        client = PivClient(transport.transmit)
        client.select()
        with pytest.raises(WrongFactoryKeyError):
            client.authenticate(profile.management_key, profile.management_algorithm)
    finally:
        transport.close()


def test_yubico_piv_tool_reads_status_and_chuid(produced):
    status = run("yubico-piv-tool", "-r", READER, "-a", "status")
    assert status.returncode == 0, status.stderr
    assert "CHUID" in status.stdout and "Slot 9a" in status.stdout
    chuid = run("yubico-piv-tool", "-r", READER, "-a", "read-object", "--id", "0x5fc102", "-f", "hex")
    with produced.sessions() as session:  # the card in the reader is card 2's only attempt
        guid = session.scalar(select(ProductionAttempt.card_uuid).where(ProductionAttempt.card_id == 2))
    assert chuid.returncode == 0 and guid.hex in chuid.stdout.lower(), chuid.stderr
