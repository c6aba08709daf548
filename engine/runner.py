"""The in-process background runner: advances instances on worker threads, one job per instance.

A request that completes a user task only queues the instance here; the engine steps after it
(production can take minutes) never run inside a web request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)


class Runner:
    """Queue of instances to advance; an instance queued while it runs is advanced once more after."""

    def __init__(self, advance: Callable[[str], None], threads: int = 2,
                 retry_on: tuple[type[Exception], ...] = (), retry_delay: float = 0.1,
                 retries: int = 6):
        self._advance = advance
        self._retry_on = retry_on
        self._retry_delay = retry_delay
        self._retries = retries
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="cardflow-runner")
        self._lock = threading.Condition()
        self._active: set[str] = set()
        self._again: set[str] = set()
        self._finished = 0  # advances finished so far, of any instance: see ``wait_for_advance``

    def submit(self, instance_id: str) -> None:
        """Advance ``instance_id`` soon; never twice at the same time."""
        with self._lock:
            if instance_id in self._active:
                self._again.add(instance_id)
                return
            self._active.add(instance_id)
        self._pool.submit(self._run, instance_id)

    def _run(self, instance_id: str) -> None:
        busy_tries = 0
        while True:
            try:
                self._advance(instance_id)
            except self._retry_on:
                # Someone else holds the instance: a request completing a task for a moment, or
                # another process for longer. Back off, then leave it: the holder advances it,
                # and the sweeper resumes it if the holder died (no thread spins on it forever).
                busy_tries += 1
                if busy_tries <= self._retries:
                    time.sleep(self._retry_delay * 2 ** (busy_tries - 1))
                    continue
            except Exception:  # the runtime records instance errors; this is the last line
                log.exception("advancing instance %s failed", instance_id)
            with self._lock:
                if instance_id in self._again:
                    self._again.discard(instance_id)
                    continue
                self._active.discard(instance_id)
                self._finished += 1
                self._lock.notify_all()
                return

    def wait(self, instance_id: str, timeout: float = 60.0) -> bool:
        """Block until ``instance_id`` is idle; False on timeout."""
        with self._lock:
            return self._lock.wait_for(lambda: instance_id not in self._active, timeout)

    def finished(self) -> int:
        """How many advances have finished so far; give it to ``wait_for_advance``."""
        with self._lock:
            return self._finished

    def wait_for_advance(self, since: int, timeout: float) -> None:
        """Block until an advance of any instance finished after ``finished()`` gave ``since``,
        or ``timeout`` seconds passed."""
        with self._lock:
            self._lock.wait_for(lambda: self._finished != since, timeout)

    def busy(self, instance_id: str) -> bool:
        """True while the instance is queued or being advanced."""
        with self._lock:
            return instance_id in self._active

    def shutdown(self) -> None:
        """Finish running jobs and stop the threads."""
        self._pool.shutdown(wait=True)
