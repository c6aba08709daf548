"""A station whose first blank cards refuse key generation, for orders with failed cards."""

from __future__ import annotations

from tasks.cardsdk.ca import LocalCA, ca_folder
from tasks.cardsdk.custody import Custody, load_or_create_key
from tasks.cardsdk.encoder import Encoder
from tasks.cardsdk.piv import profiles
from tasks.cardsdk.piv.transport import InProcessTransport
from tasks.cardsdk.piv.virtual_card import VirtualPivCard
from tasks.cardsdk.printer import SpoolPrinter
from tasks.cardsdk.station import Station
from tests.cardsdk.faults import FaultyCard

KEY_GENERATION_REFUSED = bytes.fromhex("6982")


class BlankCards:
    """Hands out ``faulty`` cards that refuse key generation, then good blank cards."""

    def __init__(self, faulty: int) -> None:
        self.faulty = faulty

    def next_card(self) -> InProcessTransport:
        """The next blank card in the reader."""
        if self.faulty > 0:
            self.faulty -= 1
            return InProcessTransport(FaultyCard(0x47, KEY_GENERATION_REFUSED, 1))
        return InProcessTransport(VirtualPivCard())


def failing_station(settings, faulty: int):
    """A station factory for build_services: its first ``faulty`` cards fail at encoding."""

    def build(sessions) -> Station:
        ca = LocalCA(ca_folder(settings.instance_path), settings.ca_passphrase, sessions)
        custody = Custody(sessions, load_or_create_key(settings.instance_path))
        encoder = Encoder(BlankCards(faulty), ca, custody, profiles.get("piv-3des-p256"))
        return Station(SpoolPrinter(), encoder, "failing")

    return build
