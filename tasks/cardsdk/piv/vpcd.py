"""The virtual card as a process behind pcscd, through the vsmartcard ``vpcd`` socket protocol.

pcscd's vpcd driver listens on 127.0.0.1:35963; this process connects to it ("inserts" the card).
Every message is a 2-byte big-endian length and a payload: one byte is a control (0 power off,
1 power on, 2 reset, 4 ask for the ATR), anything longer is a command APDU. Closing the socket
"removes" the card.

Fresh cards for tests: ``--fresh`` starts with a blank card; SIGUSR1 swaps in a new blank card
(removal, then insertion), so an order of several cards can be encoded one after another while
the last card stays in the reader for OpenSC. The state file always holds the current card.
Blank cards are of the card stock ``--profile`` names (retry counts, management key and its
commands), the same profile a station's encoder is configured with.

Run it with ``python -m tasks.cardsdk.piv.vpcd`` or ``cardflow virtual-card``.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import time
from pathlib import Path

from tasks.cardsdk.piv import profiles
from tasks.cardsdk.piv.profiles import CardProfile
from tasks.cardsdk.piv.virtual_card import VirtualPivCard

log = logging.getLogger(__name__)

DEFAULT_PORT = 35963
CONTROL_OFF, CONTROL_ON, CONTROL_RESET, CONTROL_ATR = 0, 1, 2, 4


class VirtualCardProcess:
    """One virtual card slot: serves APDUs from vpcd, persists the card, swaps cards on request."""

    def __init__(
        self,
        port: int = DEFAULT_PORT,
        state_file: Path | None = None,
        fresh: bool = False,
        host: str = "127.0.0.1",
        profile: CardProfile | None = None,
    ) -> None:
        """Load the card from ``state_file`` (unless ``fresh``) or start with a blank one."""
        self.address = (host, port)
        self.profile = profile or profiles.get(profiles.DEFAULT_PROFILE)
        self.state_file = Path(state_file) if state_file else None
        if self.state_file and self.state_file.exists() and not fresh:
            self.card = VirtualPivCard.from_json(self.state_file.read_text())
        else:
            self.card = VirtualPivCard.blank(self.profile)
        self.save()
        if self.state_file:
            # The feeder (tasks.cardsdk.piv.feeder) finds this process through the pid file.
            self.state_file.with_suffix(".pid").write_text(str(os.getpid()))
        self.swap_requested = False
        self.stop_requested = False

    def save(self) -> None:
        """Write the card state atomically (a reader of the file never sees half a card)."""
        if self.state_file is None:
            return
        partial = self.state_file.with_suffix(".tmp")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(self.card.to_json())
        os.replace(partial, self.state_file)
        self.card.dirty = False

    def handle(self, payload: bytes) -> bytes | None:
        """Answer one vpcd message; None for controls that need no answer."""
        if len(payload) == 1:
            if payload[0] in (CONTROL_OFF, CONTROL_ON, CONTROL_RESET):
                self.card.reset()
                return None
            if payload[0] == CONTROL_ATR:
                return self.card.atr
            log.warning("unknown vpcd control byte %02X", payload[0])
            return None
        answer = self.card.transmit(payload)
        if self.card.dirty:
            self.save()
        return answer

    def connect(self) -> socket.socket:
        """Connect to pcscd's vpcd driver, retrying until it listens (pcscd may start later)."""
        while not self.stop_requested:
            try:
                connection = socket.create_connection(self.address, timeout=2)
            except OSError:
                time.sleep(0.2)
                continue
            # A short timeout lets the loop notice swap and stop requests between APDUs.
            connection.settimeout(0.2)
            # Answers are small and strictly request/response: without this, Nagle's algorithm
            # and delayed ACKs hold each answer back for tens of milliseconds.
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return connection
        raise SystemExit(0)

    def serve(self) -> None:
        """Serve until SIGTERM/SIGINT; on SIGUSR1 pull the card and insert a fresh blank one."""
        while not self.stop_requested:
            connection = self.connect()
            log.info("virtual card %s inserted", self.card.serial)
            try:
                self._serve_connection(connection)
            finally:
                connection.close()
            if self.swap_requested:
                self.swap_requested = False
                self.card = VirtualPivCard.blank(self.profile)
                self.save()
                # Leave the reader empty long enough for pcscd's polling to see the removal.
                time.sleep(0.6)
        self.save()

    def _serve_connection(self, connection: socket.socket) -> None:
        """Exchange messages until vpcd hangs up or a swap/stop is requested."""
        buffer = b""
        while not (self.stop_requested or self.swap_requested):
            try:
                chunk = connection.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                return
            # vpcd sends the length and the APDU in two writes: acknowledging at once lets the
            # second one through instead of after the 40 ms delayed-ACK timer (Linux only).
            if hasattr(socket, "TCP_QUICKACK"):
                connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            buffer += chunk
            while len(buffer) >= 2 and len(buffer) >= 2 + int.from_bytes(buffer[:2], "big"):
                size = int.from_bytes(buffer[:2], "big")
                payload, buffer = buffer[2 : 2 + size], buffer[2 + size :]
                answer = self.handle(payload)
                if answer is not None:
                    connection.sendall(len(answer).to_bytes(2, "big") + answer)

    def install_signals(self) -> None:
        """SIGUSR1 swaps the card; SIGTERM and SIGINT stop after saving."""

        def swap(_signum, _frame) -> None:
            """Ask the loop for a fresh blank card."""
            self.swap_requested = True

        def stop(_signum, _frame) -> None:
            """Ask the loop to finish."""
            self.stop_requested = True

        signal.signal(signal.SIGUSR1, swap)
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)


def run(port: int = DEFAULT_PORT, state_file: Path | None = None, fresh: bool = False,
        profile: str = profiles.DEFAULT_PROFILE) -> None:
    """Run the virtual card process in the foreground until it is told to stop."""
    process = VirtualCardProcess(port, state_file, fresh, profile=profiles.get(profile))
    process.install_signals()
    process.serve()


def main() -> None:
    """Command line entry: ``python -m tasks.cardsdk.piv.vpcd [--port N] [--state-file F] [--fresh]``."""
    parser = argparse.ArgumentParser(description="Virtual PIV card for pcscd's vpcd driver")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--state-file", type=Path)
    parser.add_argument("--fresh", action="store_true", help="start with a blank card")
    parser.add_argument("--profile", default=profiles.DEFAULT_PROFILE,
                        help="card profile of the blank cards (a built-in name or a JSON file)")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s virtual-card %(message)s")
    try:
        profiles.get(arguments.profile)
    except ValueError as error:
        parser.error(str(error))
    run(arguments.port, arguments.state_file, arguments.fresh, arguments.profile)


if __name__ == "__main__":
    main()
