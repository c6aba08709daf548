"""Another card stock is configuration: the virtual card process and the encoder both take the
fixed-key, one-way, 5/10-tries stock from its profile, and the card encodes through pcscd."""

from __future__ import annotations

import fcntl
import os
import subprocess
import tempfile
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

import tasks.cardsdk.records  # noqa: F401
from tasks.cardsdk.ca import LocalCA
from tasks.cardsdk.card_identity import CardIdentityIssuer
from tasks.cardsdk.custody import Custody, load_or_create_key
from tasks.cardsdk.encoder import build_encoder
from tasks.cardsdk.job import CardJob
from tasks.cardsdk.piv import profiles
from tasks.cardsdk.piv.client import PivClient
from tasks.cardsdk.piv.errors import StatusWordError
from tasks.cardsdk.piv.testbed import READER, PcscTestbed
from tasks.cardsdk.piv.transport import PcscTransport
from tasks.store import Base
from tests.cardsdk.piv_verify import verify_chuid

pytestmark = pytest.mark.pcscd
STOCK = "piv-aes128-fixed-key"


@pytest.fixture(scope="module")
def encoded(tmp_path_factory):
    """A card of the stock encoded through pcscd; it stays in the reader."""
    folder = tmp_path_factory.mktemp("stock")
    with open(Path(tempfile.gettempdir()) / "cardflow-pcscd-tests.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one pcscd and one vpcd port a machine, as in conftest
        with PcscTestbed(folder / "testbed", profile=STOCK):
            engine = create_engine(f"sqlite:///{folder / 'cardflow.db'}")
            Base.metadata.create_all(engine)
            sessions = sessionmaker(engine, expire_on_commit=False)
            LocalCA.init(folder / "ca", "pass")
            ca = LocalCA(folder / "ca", "pass", sessions)
            custody = Custody(sessions, load_or_create_key(folder))
            identity = CardIdentityIssuer().new(7, 0)
            job = CardJob(7, "TC-000007", "Acme", date.today() + timedelta(days=14), "stock/7/1",
                          Path(os.devnull), certificates=("PIV Authentication",),
                          card_uuid=identity.card_uuid, fascn=identity.fascn.pack())
            build_encoder("pcsc", "Virtual PCD*", STOCK, ca, custody).encode(job)
            yield {"ca": ca, "custody": custody, "job": job}
            engine.dispose()


def test_the_stock_behaves_as_its_profile_says_through_pcscd(encoded):
    profile = profiles.get(STOCK)
    pin = encoded["custody"].release(7)["pin"]
    transport = PcscTransport(READER)
    try:
        client = PivClient(transport.transmit)
        client.select()
        assert client.pin_tries_left() == 5  # the stock's count, restored by the encoder's VERIFY
        with pytest.raises(StatusWordError) as mutual:
            client.authenticate(profile.management_key, "AES128", mutual=True)
        assert mutual.value.sw == 0x6A81
        # Custody keeps the maker's key, which the card still takes (one way).
        assert encoded["custody"].management_key(7) == profile.management_key
        client.authenticate(profile.management_key, "AES128", mutual=False)
        chuid = verify_chuid(client.get_object(profiles.OBJECT_CHUID), encoded["ca"].certificate)
        assert chuid[0x34] == encoded["job"].card_uuid.bytes
        client.verify_pin(pin)
    finally:
        transport.close()
    listing = subprocess.run(["pkcs15-tool", "--reader", READER, "--list-certificates"], capture_output=True,
                             text=True, timeout=60)
    assert "Certificate for PIV Authentication" in listing.stdout
    assert "Certificate for Card Authentication" in listing.stdout
