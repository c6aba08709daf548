"""Transports: how APDUs reach a card. The PIV client only needs ``transmit(apdu) -> response``.

``InProcessTransport`` calls a VirtualPivCard directly (no pcscd needed); ``PcscTransport`` goes
through PC/SC with pyscard, the only module of the project that imports pyscard.
"""

from __future__ import annotations

import fnmatch
import re
import time
from typing import Protocol

from tasks.cardsdk.piv import profiles
from tasks.cardsdk.piv.errors import CardRemovedError, NoCardError, NoReaderError
from tasks.cardsdk.piv.profiles import CardProfile
from tasks.cardsdk.piv.virtual_card import VirtualPivCard


class Transport(Protocol):
    """Anything that carries command APDUs to one card and brings back response + SW1SW2."""

    def transmit(self, apdu: bytes) -> bytes:
        """Send one command APDU and return the response data followed by SW1SW2."""
        ...

    def close(self) -> None:
        """Release the card."""
        ...


class InProcessTransport:
    """The virtual card called directly; ``card.removed`` simulates pulling it out."""

    def __init__(self, card: VirtualPivCard) -> None:
        """Power the card on."""
        self.card = card
        card.reset()

    def transmit(self, apdu: bytes) -> bytes:
        """Hand the APDU to the card object."""
        if self.card.removed:
            raise CardRemovedError("The card was removed during encoding. Put it back or use a new card.")
        return self.card.transmit(apdu)

    def close(self) -> None:
        """Nothing to release in-process."""


def match_reader(names: list[str], pattern: str | None) -> str:
    """Pick a reader: exact name, then shell pattern (fnmatch), then regular expression."""
    if not names:
        raise NoReaderError("No card reader is connected. Plug in the reader (or start pcscd) and retry.")
    if pattern is None:
        return names[0]
    if pattern in names:
        return pattern
    for name in names:
        if fnmatch.fnmatchcase(name, pattern):
            return name
    try:
        regex = re.compile(pattern)
    except re.error:
        regex = None
    for name in names:
        if regex is not None and regex.search(name):
            return name
    raise NoReaderError(
        f"No card reader matches {pattern!r}; connected readers: {', '.join(names)}. Check the configuration."
    )


class PcscTransport:
    """One card in one PC/SC reader, over T=1 or T=0 (whichever the card offers)."""

    def __init__(self, reader: str | None = None, wait_seconds: float = 0.0) -> None:
        """Connect to the card in the reader matching ``reader``, waiting up to ``wait_seconds``."""
        from smartcard.CardConnection import CardConnection
        from smartcard.Exceptions import CardConnectionException, NoCardException
        from smartcard.System import readers

        try:
            available = {str(r): r for r in readers()}
        except Exception as error:
            raise NoReaderError(f"PC/SC is not available ({error}). Start pcscd and retry.") from None
        self.reader_name = match_reader(sorted(available), reader)
        deadline = time.monotonic() + wait_seconds
        while True:
            connection = available[self.reader_name].createConnection()
            try:
                connection.connect(CardConnection.T1_protocol | CardConnection.T0_protocol)
                break
            except (NoCardException, CardConnectionException):
                # Release the PC/SC context now: pyscard would do it at garbage collection, when
                # pcscd may be gone and the failure surfaces as an unraisable exception.
                connection.release()
                if time.monotonic() >= deadline:
                    raise NoCardError(
                        f"There is no card in reader {self.reader_name!r}. Insert a blank card and retry."
                    ) from None
                time.sleep(0.1)
        self._connection = connection
        self._exceptions = (CardConnectionException, NoCardException)

    @property
    def atr(self) -> bytes:
        """The card's answer to reset."""
        return bytes(self._connection.getATR())

    def transmit(self, apdu: bytes) -> bytes:
        """Send through PC/SC; a vanished card becomes CardRemovedError."""
        try:
            data, sw1, sw2 = self._connection.transmit(list(apdu))
        except self._exceptions:
            raise CardRemovedError(
                f"The card left reader {self.reader_name!r} during encoding. Put it back or use a new card."
            ) from None
        return bytes(data) + bytes([sw1, sw2])

    def close(self) -> None:
        """Disconnect and release the PC/SC context, ignoring a card that is already gone."""
        try:
            self._connection.release()
        except self._exceptions:
            pass


class VirtualCardSource:
    """Card source for the in-process transport: a fresh blank virtual card of ``profile`` per job."""

    def __init__(self, profile: CardProfile | None = None) -> None:
        """No card handed out yet."""
        self.profile = profile or profiles.get(profiles.DEFAULT_PROFILE)
        self.last_card: VirtualPivCard | None = None

    def next_card(self) -> InProcessTransport:
        """A transport to a new blank card; the card stays inspectable as ``last_card``."""
        self.last_card = VirtualPivCard.blank(self.profile)
        return InProcessTransport(self.last_card)


class PcscCardSource:
    """Card source for a PC/SC reader: whatever card sits in the configured reader."""

    def __init__(self, reader: str | None, wait_seconds: float = 10.0, feeder=None) -> None:
        """Remember the reader pattern, how long to wait for a card, and who feeds blank cards.

        ``feeder`` (anything with ``feed()``) brings the next blank card; without one a person does.
        """
        self.reader = reader
        self.wait_seconds = wait_seconds
        self.feeder = feeder

    def next_card(self) -> PcscTransport:
        """Feed a blank card when there is a feeder, then connect, waiting for a card to be there."""
        if self.feeder is not None:
            self.feeder.feed()
        return PcscTransport(self.reader, self.wait_seconds)
