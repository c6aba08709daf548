"""Through real pcscd and vsmartcard-vpcd: the encoded card satisfies independent PIV clients."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from datetime import date, timedelta

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

import tasks.cardsdk.records  # noqa: F401
from tasks.cardsdk.ca import CERT_FILE, LocalCA
from tasks.cardsdk.card_identity import CardIdentityIssuer
from tasks.cardsdk.custody import Custody, load_or_create_key
from tasks.cardsdk.encoder import Encoder, build_encoder
from tasks.cardsdk.job import CardJob
from tasks.cardsdk.piv import profiles
from tasks.cardsdk.piv.client import PivClient
from tasks.cardsdk.piv.errors import CardRemovedError, WrongFactoryKeyError
from tasks.cardsdk.piv.testbed import READER
from tasks.cardsdk.piv.transport import PcscTransport
from tasks.store import Base

pytestmark = pytest.mark.pcscd


@pytest.fixture(scope="module")
def testbed(pcsc_testbed):
    return pcsc_testbed


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Database, CA, custody and a PC/SC encoder for the module."""
    folder = tmp_path_factory.mktemp("world")
    engine = create_engine(f"sqlite:///{folder / 'cardflow.db'}")
    Base.metadata.create_all(engine)
    sessions = sessionmaker(engine, expire_on_commit=False)
    LocalCA.init(folder / "ca", "pass")
    ca = LocalCA(folder / "ca", "pass", sessions)
    custody = Custody(sessions, load_or_create_key(folder))
    encoder = build_encoder("pcsc", "Virtual PCD*", "piv-3des-p256", ca, custody)
    yield {"folder": folder, "ca": ca, "custody": custody, "encoder": encoder}
    engine.dispose()


def job(card_id: int, attempt: int = 1) -> CardJob:
    """A job for two P-256 certificates (and Card Authentication, which every card gets)."""
    identity = CardIdentityIssuer("1234", "5678").new(card_id, attempt - 1)
    return CardJob(
        card_id=card_id,
        card_number=f"TC-{card_id:06d}",
        organisation="Acme",
        valid_until=date.today() + timedelta(days=14),
        attempt_ref=f"order-1/card-{card_id}/attempt-{attempt}",
        spool_dir=os.devnull,
        certificates=("PIV Authentication", "Digital Signature"),
        card_uuid=identity.card_uuid,
        fascn=identity.fascn.pack(),
    )


def run(*command: str) -> subprocess.CompletedProcess:
    """Run an independent client with a timeout; output is kept for the assertions."""
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def encoded(testbed, world):
    """An order of two cards encoded one after the other; the second stays in the reader."""
    first = world["encoder"].encode(job(1))
    serial = testbed.new_card()
    second_job = job(2)
    second = world["encoder"].encode(second_job)
    assert first.certificate_serials != second.certificate_serials
    assert second.chip_serial == str(serial)
    second.job = second_job
    return second


def test_opensc_lists_and_reads_certificates_that_verify(encoded, world):
    listing = run("pkcs15-tool", "--reader", READER, "--list-certificates")
    assert listing.returncode == 0, listing.stderr
    assert "Certificate for PIV Authentication" in listing.stdout
    assert "Certificate for Digital Signature" in listing.stdout
    for serial in encoded.certificate_serials:
        assert serial in listing.stdout.replace(" ", "").upper()
    for object_id in ("01", "02"):
        pem = run("pkcs15-tool", "--reader", READER, "--read-certificate", object_id)
        assert pem.returncode == 0, pem.stderr
        path = world["folder"] / f"cert-{object_id}.pem"
        path.write_text(pem.stdout)
        verified = run("openssl", "verify", "-CAfile", str(world["folder"] / "ca" / CERT_FILE), str(path))
        assert verified.returncode == 0 and ": OK" in verified.stdout, verified.stdout + verified.stderr


def test_custody_pin_verifies_and_opensc_signs_with_the_card_key(encoded, world):
    secrets = world["custody"].release(2)
    # The PIN goes on the command line of a short-lived child only; it is never printed.
    wrong = run("pkcs15-tool", "--reader", READER, "--verify-pin", "--auth-id", "01", "--pin", "00000000")
    assert wrong.returncode != 0
    checked = run(
        "pkcs15-tool", "--reader", READER, "--verify-pin", "--auth-id", "01", "--pin", secrets["pin"]
    )
    assert checked.returncode == 0, checked.stderr
    folder = world["folder"]
    (folder / "data.bin").write_bytes(b"\x11" * 32)
    signed = run(
        "pkcs15-crypt",
        "--reader",
        READER,
        "--sign",
        "--key",
        "01",
        "--signature-format",
        "openssl",
        "--input",
        str(folder / "data.bin"),
        "--output",
        str(folder / "sig.der"),
        "--pin",
        secrets["pin"],
    )
    assert signed.returncode == 0, signed.stderr
    public = run("openssl", "x509", "-in", str(folder / "cert-01.pem"), "-pubkey", "-noout").stdout
    (folder / "pub.pem").write_text(public)
    verified = run(
        "openssl",
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        str(folder / "pub.pem"),
        "-in",
        str(folder / "data.bin"),
        "-sigfile",
        str(folder / "sig.der"),
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_pin_from_custody_and_factory_key_over_pcsc(encoded, world):
    transport = PcscTransport(READER)
    try:
        client = PivClient(transport.transmit)
        client.select()
        client.verify_pin(world["custody"].release(2)["pin"])
        with pytest.raises(WrongFactoryKeyError):
            client.authenticate(bytes.fromhex("010203040506070801020304050607080102030405060708"), "3DES")
        client.authenticate(world["custody"].management_key(2), "3DES")
    finally:
        transport.close()


def test_yubico_piv_tool_reads_status_and_chuid(encoded):
    guid = encoded.job.card_uuid.hex
    status = run("yubico-piv-tool", "--reader", READER, "--action", "status")
    assert status.returncode == 0, status.stderr
    assert guid in status.stdout.lower()
    assert "Slot 9a" in status.stdout and "CN=TC-000002" in status.stdout
    chuid = run(
        "yubico-piv-tool",
        "--reader",
        READER,
        "--action",
        "read-object",
        "--id",
        "0x5fc102",
        "--format",
        "hex",
    )
    assert chuid.returncode == 0 and guid in chuid.stdout.lower()


class PullingSource:
    """Hands out the reader's card, and pulls it out of the reader after ``after`` commands."""

    def __init__(self, testbed, after: int) -> None:
        self.testbed, self.after = testbed, after

    def next_card(self) -> PcscTransport:
        transport = PcscTransport(READER)
        transmit, sent = transport.transmit, []

        def pulling_transmit(apdu: bytes) -> bytes:
            sent.append(apdu)
            if len(sent) == self.after:
                old = self.testbed.current_serial()
                self.testbed.card.send_signal(signal.SIGUSR1)
                while self.testbed.current_serial() == old:
                    time.sleep(0.02)
            return transmit(apdu)

        transport.transmit = pulling_transmit
        return transport


def test_pulling_the_card_mid_encoding_is_reported(encoded, testbed, world):
    testbed.new_card()
    encoder = Encoder(PullingSource(testbed, after=6), world["ca"], world["custody"],
                      profiles.get("piv-3des-p256"))
    started = time.monotonic()
    with pytest.raises(CardRemovedError, match="left reader"):
        encoder.encode(job(3))
    assert time.monotonic() - started < 10
    testbed.wait_for_card(testbed.current_serial())
