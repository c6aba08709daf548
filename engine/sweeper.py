"""The sweeper: every host (web server with the in-process runner, every station worker) runs it,
every few seconds, so whatever a dead host left behind is taken over within seconds by any
survivor, not only when a process starts.

A sweep is a named function; one that fails is logged and tried again at the next beat, the
others still run.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

SWEEP_SECONDS = 2.0


class Sweeper:
    """Runs ``sweeps`` every ``interval`` seconds on a daemon thread until ``stop``."""

    def __init__(self, sweeps: dict[str, Callable[[], object]], interval: float = SWEEP_SECONDS):
        self.sweeps = sweeps
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> None:
        """Run every sweep once (tests and the worker's start call this directly)."""
        for name, sweep in self.sweeps.items():
            try:
                sweep()
            except Exception:
                log.exception("sweep %s failed; trying again in %.0f s", name, self.interval)

    def start(self) -> None:
        """Sweep in the background."""
        self._thread = threading.Thread(target=self._loop, name="cardflow-sweeper", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.run_once()

    def stop(self) -> None:
        """Stop after the current sweep."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
