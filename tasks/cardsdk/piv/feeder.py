"""Card feeders: bring the next blank card into the reader before each encoding.

A printer with an encoding module feeds cards itself; a desk reader needs a person. The virtual
card process (``cardflow virtual-card --state-file F``) is fed by a signal: it pulls the card it
holds (which stays saved for inspection) and inserts a fresh blank one.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from tasks.cardsdk.job import CardSdkError
from tasks.cardsdk.piv.apdu import Command, exchange
from tasks.cardsdk.piv.errors import NoCardError
from tasks.cardsdk.piv.profiles import PIV_AID

VIRTUAL_READER = "Virtual PCD 00 00"


def read_serial(reader: str = VIRTUAL_READER) -> int | None:
    """The serial of the card in ``reader`` (None when there is no usable card)."""
    from tasks.cardsdk.piv.transport import PcscTransport

    try:
        transport = PcscTransport(reader)
    except CardSdkError:
        return None
    try:
        exchange(transport.transmit, Command(0x00, 0xA4, 0x04, 0x00, PIV_AID, 256))
        data, sw = exchange(transport.transmit, Command(0x00, 0xF8, 0x00, 0x00, le=256))
        return int.from_bytes(data, "big") if sw == 0x9000 else None
    except CardSdkError:
        return None
    finally:
        transport.close()


class VirtualCardFeeder:
    """Feeds blank cards into the local virtual card process that keeps its state in ``state_file``."""

    def __init__(self, state_file: Path, reader: str = VIRTUAL_READER, timeout: float = 20.0) -> None:
        """Feed through the process whose state (and pid file beside it) is ``state_file``."""
        self.state_file = Path(state_file)
        self.reader = reader
        self.timeout = timeout

    def _serial(self) -> int | None:
        try:
            return json.loads(self.state_file.read_text())["serial"]
        except (OSError, ValueError, KeyError):
            return None

    def feed(self) -> int:
        """Swap in a blank card; return its serial once PC/SC shows it in the reader."""
        try:
            pid = int(self.state_file.with_suffix(".pid").read_text())
            old = self._serial()
            os.kill(pid, signal.SIGUSR1)
        except (OSError, ValueError):
            raise NoCardError("The virtual card process is not running, so no blank card can be fed. "
                              "Start it with 'cardflow virtual-card --state-file ...'.") from None
        deadline = time.monotonic() + self.timeout
        serial = old
        while serial == old and time.monotonic() < deadline:
            time.sleep(0.05)
            serial = self._serial()
        while serial != old and time.monotonic() < deadline:
            if read_serial(self.reader) == serial:
                return serial
            time.sleep(0.1)
        raise NoCardError("The virtual card process did not insert a blank card in time.")
