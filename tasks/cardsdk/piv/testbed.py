"""A pcscd + virtual card test bed for integration tests and the bench.

Starts ``pcscd --foreground`` when none runs, and the virtual card process; ``new_card()`` swaps
in a fresh blank card and waits until PC/SC shows it; ``stop()`` ends only what was started here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tasks.cardsdk.piv.feeder import VIRTUAL_READER as READER
from tasks.cardsdk.piv.feeder import VirtualCardFeeder, read_serial


def pcscd_running() -> bool:
    """Whether a pcscd process exists on this machine."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "pcscd":
                    return True
            except OSError:
                continue
    return False


class PcscTestbed:
    """pcscd (if needed) and one virtual card process, for the duration of a test session."""

    def __init__(self, folder: Path, port: int = 35963, profile: str = "piv-3des-p256") -> None:
        """Work in ``folder`` (state file, logs), with blank cards of card profile ``profile``."""
        self.folder = Path(folder)
        self.profile = profile
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = port
        self.state_file = self.folder / "virtual-card.json"
        self.pcscd: subprocess.Popen | None = None
        self.card: subprocess.Popen | None = None

    def start(self, timeout: float = 20.0) -> None:
        """Start pcscd if none runs, then the virtual card; wait until the card answers."""
        if not pcscd_running():
            pcscd = shutil.which("pcscd") or "/usr/sbin/pcscd"
            log = open(self.folder / "pcscd.log", "wb")
            self.pcscd = subprocess.Popen([pcscd, "--foreground"], stdout=log, stderr=subprocess.STDOUT)
            log.close()
        log = open(self.folder / "virtual-card.log", "wb")
        self.card = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tasks.cardsdk.piv.vpcd",
                "--port",
                str(self.port),
                "--fresh",
                "--state-file",
                str(self.state_file),
                "--profile",
                self.profile,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        log.close()
        self.wait_for_card(self.current_serial(), timeout)

    def current_serial(self) -> int:
        """Serial of the card the virtual card process holds now (from its state file)."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                return json.loads(self.state_file.read_text())["serial"]
            except (OSError, ValueError, KeyError):
                time.sleep(0.05)
        raise RuntimeError(f"the virtual card process wrote no state; see {self.folder}/virtual-card.log")

    def wait_for_card(self, serial: int, timeout: float = 20.0) -> None:
        """Block until the reader holds the card with ``serial``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.card is not None and self.card.poll() is not None:
                raise RuntimeError(f"the virtual card process died; see {self.folder}/virtual-card.log")
            if read_serial() == serial:
                return
            time.sleep(0.2)
        raise RuntimeError(f"card {serial} did not appear in {READER!r}; see logs in {self.folder}")

    def new_card(self) -> int:
        """Pull the current card, insert a fresh blank one, return its serial once PC/SC shows it."""
        return VirtualCardFeeder(self.state_file).feed()

    def stop(self) -> None:
        """Stop the virtual card and, when started here, pcscd."""
        for process in (self.card, self.pcscd):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.card = self.pcscd = None

    def __enter__(self) -> PcscTestbed:
        """Start on entering a with block."""
        self.start()
        return self

    def __exit__(self, *_exc) -> None:
        """Stop on leaving it."""
        self.stop()
