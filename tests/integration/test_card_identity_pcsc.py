"""Cards a strict relying party accepts, produced by real orders through pcscd and the virtual
card process: each physical card has a GUID and FASC-N of its own (two fresh instances, a misprint
and its replacement), its CHUID and Security Object verify against the CA, OpenSC reads the
Security Object, and the Digital Signature key signs only right after a VERIFY."""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from sqlalchemy import select

from engine.config import PROJECT_ROOT, StationSettings
from engine.db import unit_of_work
from tasks import orders
from tasks.cardsdk import card_objects
from tasks.cardsdk.ca import CERT_FILE, ca_folder
from tasks.cardsdk.fascn import Fascn
from tasks.cardsdk.piv import profiles
from tasks.cardsdk.piv.apdu import find_tlv, parse_tlv
from tasks.cardsdk.piv.client import PivClient
from tasks.cardsdk.piv.errors import StatusWordError
from tasks.cardsdk.piv.testbed import READER
from tasks.cardsdk.piv.transport import PcscTransport
from tasks.store import ProductionAttempt
from tests.cardsdk.piv_verify import CHUID_TYPE, verify_chuid, verify_security_object
from tests.conftest import POSTGRES_URL, make_settings, private_schema, start_services
from tests.integration.flow import add_cards, order_id, select_and_issue, start, submit

pytestmark = [pytest.mark.pcscd, pytest.mark.postgres]
PKCS11_MODULE = next((str(path) for path in (Path("/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"),
                                             Path("/usr/lib/aarch64-linux-gnu/opensc-pkcs11.so"),
                                             Path("/usr/lib/opensc-pkcs11.so")) if path.exists()), None)


def run(*command: str) -> subprocess.CompletedProcess:
    """An independent client, with a timeout; its output is kept for the assertions."""
    return subprocess.run(command, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def read_card() -> dict[int, bytes | None]:
    """The data objects of the card in the reader, read over PC/SC."""
    transport = PcscTransport(READER)
    try:
        client = PivClient(transport.transmit)
        client.select()
        tags = [profiles.OBJECT_CHUID, profiles.OBJECT_CCC, card_objects.OBJECT_SECURITY]
        tags += [slot["object"] for slot in profiles.SLOTS.values()]
        return {tag: client.get_object(tag) for tag in tags}
    finally:
        transport.close()


def produce_with_a_misprint(folder: Path, database_url: str | None, testbed):
    """A fresh instance; an order of cards 1 and 2 through pcscd; card 2 misprinted and produced
    again. Returns the services and the order's attempts (card, attempt, GUID, FASC-N)."""
    source = folder / "source"
    for name in ("processes", "forms", "options"):
        shutil.copytree(PROJECT_ROOT / name, source / name)
    script = source / "options" / "TempCardsScriptOptions"
    both = 'certificates = ["PIV Authentication", "Digital Signature"]'
    script.write_text(script.read_text().replace('certificates = ["PIV Authentication"]', both))
    settings = make_settings(folder / "instance", database_url)
    settings.source_path = source
    settings.station = StationSettings(name="pcsc", transport="pcsc", reader="Virtual PCD*",
                                       virtual_card_state=testbed.state_file)
    services = start_services(settings)
    add_cards(services, 2)
    instance_id, task = start(services)
    task = select_and_issue(services, instance_id, task, [1, 2])
    task = submit(services, instance_id, task, {"action": "next"})
    assert task.bpmn_id == "Activity_Review"
    with unit_of_work(services.sessions) as session:
        orders.request_repeat(session, order_id(services, instance_id), [], {2: "ink smear on the photo"})
    task = submit(services, instance_id, task, {"action": "repeat"})
    assert task.bpmn_id == "Activity_Review"
    with services.sessions() as session:
        attempts = session.execute(select(
            ProductionAttempt.card_id, ProductionAttempt.attempt, ProductionAttempt.card_uuid,
            ProductionAttempt.fascn, ProductionAttempt.outcome)
            .order_by(ProductionAttempt.card_id, ProductionAttempt.attempt)).all()
    assert [(a.card_id, a.attempt, a.outcome) for a in attempts] == [
        (1, 1, "produced"), (2, 1, "produced"), (2, 2, "produced")]
    return services, attempts


@pytest.fixture(scope="module")
def world(pcsc_testbed, tmp_path_factory):
    """Instance A on SQLite, then instance B on PostgreSQL, each an order with a misprint; the card
    last in the reader is B's replacement of card 2 (A's was read before B started)."""
    if not POSTGRES_URL:
        pytest.fail("CARDFLOW_TEST_POSTGRES_URL is not set; .ci/run sets it for the local PostgreSQL.")
    first, first_attempts = produce_with_a_misprint(tmp_path_factory.mktemp("a"), None, pcsc_testbed)
    first_card = read_card()
    with private_schema(POSTGRES_URL) as url:
        second, second_attempts = produce_with_a_misprint(tmp_path_factory.mktemp("b"), url, pcsc_testbed)
        try:
            yield {"a": (first, first_attempts, first_card), "b": (second, second_attempts, read_card())}
        finally:
            second.close()
            first.close()


def ca_certificate(services) -> x509.Certificate:
    path = ca_folder(services.settings.instance_path) / CERT_FILE
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_every_physical_card_has_a_guid_and_fascn_of_its_own(world):
    _, a, _ = world["a"]
    _, b, _ = world["b"]
    every = a + b
    assert all(attempt.card_uuid.version == 4 for attempt in every)
    assert len({attempt.card_uuid for attempt in every}) == len(every) == 6
    # Two fresh instances: card 1 of each is a different physical card with a different GUID.
    assert a[0].card_uuid != b[0].card_uuid
    for attempts in (a, b):
        assert len({attempt.fascn for attempt in attempts}) == 3
        misprint, replacement = (Fascn.from_digits(attempt.fascn) for attempt in attempts[1:])
        assert misprint.credential_number == replacement.credential_number == "000002"
        assert (misprint.credential_series, replacement.credential_series) == ("0", "1")
        assert misprint.agency_code == replacement.agency_code


@pytest.mark.parametrize("instance", ["a", "b"])
def test_the_card_carries_its_attempts_identity_signed_by_the_ca(world, instance):
    services, attempts, card = world[instance]
    replacement = attempts[-1]
    ca = ca_certificate(services)
    chuid = verify_chuid(card[profiles.OBJECT_CHUID], ca)
    assert uuid.UUID(bytes=chuid[0x34]) == replacement.card_uuid
    assert Fascn.unpack(chuid[0x30]).digits == replacement.fascn
    groups = verify_security_object(card[card_objects.OBJECT_SECURITY], ca, card.get)
    assert set(groups.values()) == {profiles.OBJECT_CHUID, profiles.OBJECT_CCC} | {
        profiles.SLOTS[name]["object"] for name in ("PIV Authentication", "Digital Signature",
                                                    "Card Authentication")}


def test_openssl_verifies_the_chuid_signature_against_the_ca(world, tmp_path):
    services, _, card = world["b"]
    elements = parse_tlv(card[profiles.OBJECT_CHUID])
    (tmp_path / "signed").write_bytes(card[profiles.OBJECT_CHUID][:sum(2 + len(v) for _, v in elements[:3])])
    (tmp_path / "signature.der").write_bytes(dict(elements)[0x3E])
    ca_pem = ca_folder(services.settings.instance_path) / CERT_FILE
    verified = run("openssl", "cms", "-verify", "-inform", "DER", "-in", str(tmp_path / "signature.der"),
                   "-content", str(tmp_path / "signed"), "-binary", "-CAfile", str(ca_pem),
                   "-purpose", "any", "-out", str(tmp_path / "out"))
    assert verified.returncode == 0 and "Verification successful" in verified.stderr, verified.stderr
    printed = run("openssl", "cms", "-cmsout", "-print", "-inform", "DER",
                  "-in", str(tmp_path / "signature.der"))
    assert CHUID_TYPE in printed.stdout and "2.16.840.1.101.3.6.5" in printed.stdout  # pivSigner-DN
    (tmp_path / "signed").write_bytes(b"\x30\x19" + bytes(25) + (tmp_path / "signed").read_bytes()[27:])
    forged = run("openssl", "cms", "-verify", "-inform", "DER", "-in", str(tmp_path / "signature.der"),
                 "-content", str(tmp_path / "signed"), "-binary", "-CAfile", str(ca_pem), "-purpose", "any",
                 "-out", str(tmp_path / "out"))
    assert forged.returncode != 0


def test_opensc_dump_lists_the_security_object_it_reads_from_the_card(world):
    services, _, card = world["b"]
    dump = run("pkcs15-tool", "--reader", READER, "--dump")
    assert dump.returncode == 0, dump.stderr
    section = dump.stdout.split("Data object 'Security Object'", 1)[1].split("Data object '", 1)[0]
    assert "2.16.840.1.101.3.7.2.144.0" in section
    found = re.search(r"Data \((\d+) bytes\):\s*([0-9A-F\s]+)", section)
    assert found, section
    read = bytes.fromhex("".join(found.group(2).split()))
    assert len(read) == int(found.group(1))
    # OpenSC hands out the object with its 53 wrapper: what it read verifies as the card's.
    content = find_tlv(read, 0x53)
    assert content == card[card_objects.OBJECT_SECURITY]
    verify_security_object(content, ca_certificate(services), card.get)


@pytest.mark.skipif(PKCS11_MODULE is None, reason="OpenSC's PKCS#11 module is not installed")
def test_pkcs11_tool_signs_with_9c_only_when_the_pin_was_verified_just_before(world, tmp_path):
    services, _, card = world["b"]
    pin = services.station.encoder.custody.release(2)["pin"]
    data = tmp_path / "data"
    data.write_bytes(b"sign me for the door log")
    sign = ("pkcs11-tool", "--module", PKCS11_MODULE, "--sign", "--id", "02", "-m", "ECDSA-SHA256",
            "--input-file", str(data), "--output-file", str(tmp_path / "sig"))
    without_pin = run(*sign)
    assert without_pin.returncode != 0
    signed = run(*sign[:3], "--login", "--pin", pin, *sign[3:])
    assert signed.returncode == 0, signed.stdout + signed.stderr
    raw = (tmp_path / "sig").read_bytes()
    stored = card[profiles.SLOTS["Digital Signature"]["object"]]
    certificate = x509.load_der_x509_certificate(find_tlv(stored, 0x70))
    signature = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    certificate.public_key().verify(signature, data.read_bytes(), ec.ECDSA(hashes.SHA256()))
    # The card itself enforces it: one VERIFY, one signature with 9C; the second answers 6982.
    transport = PcscTransport(READER)
    try:
        client = PivClient(transport.transmit)
        client.select()
        client.verify_pin(pin)
        digest = b"\x11" * 32
        client.sign(0x9C, "P256", digest)
        with pytest.raises(StatusWordError) as refused:
            client.sign(0x9C, "P256", digest)
        assert refused.value.sw == 0x6982
        client.sign(0x9A, "P256", digest)  # PIV Authentication is not PIN-always
        client.verify_pin(pin)
        client.sign(0x9C, "P256", digest)
    finally:
        transport.close()
