"""Where work runs: engine steps of instances, and external jobs such as one card at a station.

One contract, three hosts: ``InProcessJobs`` (threads of this process, the embedded default),
``engine.celery_jobs.CeleryJobs`` (queues of a broker, consumed by ``cardflow worker``) and
``engine.host_link.ForwardedJobs`` (a page process of ``cardflow run --processes N`` hands
its work to the first process, which hosts the engine and the station). Jobs
carry ids only and the database holds the truth, so a job delivered twice or lost does no harm:
a duplicate finds its work claimed or done, and the sweeper re-sends what a lost job left.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from engine.runner import Runner

log = logging.getLogger(__name__)

# A job's body: ``handler(args)``; it raises JobDeferred to be run again later (a paused station).
ExternalHandler = Callable[[dict], None]


class JobDeferred(Exception):  # noqa: N818 - a request to the host, not a failure
    """The job cannot run now (its station is paused): run it again after ``delay`` seconds."""

    def __init__(self, delay: float = 2.0):
        super().__init__(f"deferred for {delay} s")
        self.delay = delay


class Jobs(Protocol):
    """What the web app and the engine hand work to."""

    def advance(self, instance_id: str) -> None:
        """Run the instance's due engine steps soon, on any host."""

    def external(self, queue: str, kind: str, args: dict) -> None:
        """Run the external job ``kind`` with ``args`` on a host consuming ``queue``."""

    def depth(self, queue: str) -> int | None:
        """Jobs waiting in ``queue`` (None when the host cannot tell)."""

    def close(self) -> None:
        """Stop sending; let running jobs finish."""


class RemoteJobs:
    """What a process whose work runs elsewhere knows of an instance: what the database says."""

    # An engine step mostly takes tens of milliseconds: the first looks come soon after the post,
    # then less often (each look is a read of the database).
    POLL_SECONDS = (0.01, 0.01, 0.02, 0.02, 0.05)

    def __init__(self, idle: Callable[[str], bool] | None = None):
        # Whether an instance waits for a person or has ended (read from the database).
        self._idle = idle

    def wait(self, instance_id: str, timeout: float = 60.0) -> bool:
        """Block until the instance waits for a person or has ended; False on timeout."""
        deadline = time.monotonic() + timeout
        pauses = itertools.chain(self.POLL_SECONDS, itertools.repeat(self.POLL_SECONDS[-1]))
        while time.monotonic() < deadline:
            if self._idle is None or self._idle(instance_id):
                return True
            time.sleep(next(pauses))
        return False

    def busy(self, instance_id: str) -> bool:
        """True while the instance has work under way (engine steps due or running, or cards
        being produced): the other host's queues are not this process's to look into."""
        return self._idle is not None and not self._idle(instance_id)


class InProcessJobs:
    """Engine steps on the runner's threads; each external queue on one thread of its own (a
    station produces one card at a time)."""

    def __init__(self, runner: Runner, handlers: dict[str, ExternalHandler],
                 idle: Callable[[str], bool] | None = None):
        self.runner = runner
        self._handlers = handlers
        self._queues: dict[str, ThreadPoolExecutor] = {}
        self._waiting: dict[str, int] = {}
        self._lock = threading.Lock()
        self._closed = False
        # Whether an instance waits for a person or has ended (read from the database).
        self._idle = idle

    def advance(self, instance_id: str) -> None:
        """Queue the instance on the runner (never advanced twice at the same time)."""
        if not self._closed:
            self.runner.submit(instance_id)

    submit = advance  # the runner's name for it

    def external(self, queue: str, kind: str, args: dict) -> None:
        """Queue the job on ``queue``'s thread."""
        handler = self._handlers[kind]
        with self._lock:
            if self._closed:
                return
            pool = self._queues.get(queue)
            if pool is None:
                pool = self._queues[queue] = ThreadPoolExecutor(1, thread_name_prefix=f"cardflow-{queue}")
            self._waiting[queue] = self._waiting.get(queue, 0) + 1
            pool.submit(self._run, queue, kind, handler, args)

    def _run(self, queue: str, kind: str, handler: ExternalHandler, args: dict) -> None:
        with self._lock:
            self._waiting[queue] -= 1
        try:
            handler(args)
        except JobDeferred as deferred:
            threading.Timer(deferred.delay, self.external, (queue, kind, args)).start()
        except Exception:  # the job records its own failures; this is the last line
            log.exception("job %s on queue %s failed", kind, queue,
                          extra={key: args[key] for key in ("order_id", "card_id") if key in args})

    def depth(self, queue: str) -> int | None:
        """Jobs queued and not started on ``queue``."""
        with self._lock:
            return self._waiting.get(queue, 0)

    # How long a wait trusts that only this host's runner moves the instance on before it reads
    # the database anyway (another host sharing the database may have advanced it).
    LOOK_AGAIN_SECONDS = 0.25

    def wait(self, instance_id: str, timeout: float = 60.0) -> bool:
        """Block until the instance waits for a person or has ended; False on timeout.

        The instance moves on when an advance finishes, here on this host's runner: the wait
        reads the database after each one rather than every few milliseconds, which while cards
        are produced took the interpreter from the station a hundred times a second for nothing.
        """
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            finished = self.runner.finished()
            if not self.runner.busy(instance_id) and (self._idle is None or self._idle(instance_id)):
                return True
            self.runner.wait_for_advance(finished, min(left, self.LOOK_AGAIN_SECONDS))
        return False

    def busy(self, instance_id: str) -> bool:
        """True while the instance's engine steps are queued or running here."""
        return self.runner.busy(instance_id)

    def close(self) -> None:
        """Finish running jobs; queued external jobs are dropped (the sweeper re-sends them)."""
        with self._lock:
            self._closed = True
            pools = list(self._queues.values())
        for pool in pools:
            pool.shutdown(wait=True, cancel_futures=True)
        self.runner.shutdown()

    def shutdown(self) -> None:
        """Alias of ``close`` (the runner's old name)."""
        self.close()
