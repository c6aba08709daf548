"""The pipe between a page process of ``cardflow run --processes N`` and its host process.

A page process tells its host the work its pages cause (engine steps, card jobs: ``ForwardedJobs``)
and asks it what only the host knows: the depth of its queues and its metrics (``HostMetrics``).
The host answers at its ``HostDesk``. Messages are JSON, never pickle, and carry ids only: the
database holds the truth, so a job lost with a dying process is sent again by the host's
sweeper, as with the other job hosts (``engine.jobs``).
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from multiprocessing.connection import Connection

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from engine.jobs import RemoteJobs

log = logging.getLogger(__name__)

ASK_SECONDS = 10.0
TEXT_LIMIT = 256


class HostLink:
    """A page process's end of the pipe to its host: tell (no answer) or ask (one answer)."""

    def __init__(self, connection: Connection):
        self._connection = connection
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)

    def tell(self, message: dict) -> None:
        """Send ``message``; the host answers nothing."""
        with self._lock:
            self._connection.send_bytes(json.dumps(message).encode())

    def ask(self, message: dict) -> dict:
        """Send ``message`` and return the host's answer (TimeoutError after ASK_SECONDS).

        Answers carry the question's number, so a late answer to a question given up on is
        skipped, not taken for the next one's."""
        with self._lock:
            number = next(self._numbers)
            self._connection.send_bytes(json.dumps({**message, "ask": number}).encode())
            deadline = time.monotonic() + ASK_SECONDS
            while self._connection.poll(max(0.0, deadline - time.monotonic())):
                answer = json.loads(self._connection.recv_bytes())
                if answer.get("ask") == number:
                    return answer
            raise TimeoutError("the host process did not answer")

    def close(self) -> None:
        """Close the pipe."""
        self._connection.close()


class ForwardedJobs(RemoteJobs):
    """``Jobs`` of a page process: its host runs them."""

    def __init__(self, host: HostLink, idle: Callable[[str], bool] | None = None):
        super().__init__(idle)
        self.host = host

    def _tell(self, message: dict) -> None:
        try:
            self.host.tell(message)
        except OSError as error:
            # The database holds the work; the host's sweeper (or the next host's) sends it again.
            log.warning("the host process took no %s job (%s)", message["op"], type(error).__name__)

    def advance(self, instance_id: str) -> None:
        """Have the host run the instance's due engine steps."""
        self._tell({"op": "advance", "instance": instance_id})

    submit = advance  # the runner's name for it

    def external(self, queue: str, kind: str, args: dict) -> None:
        """Have the host run the external job ``kind`` on ``queue``."""
        self._tell({"op": "external", "queue": queue, "kind": kind, "args": args})

    def depth(self, queue: str) -> int | None:
        """The host's jobs waiting in ``queue``; None when it does not answer."""
        try:
            return self.host.ask({"op": "depth", "queue": queue}).get("depth")
        except (OSError, EOFError, TimeoutError, ValueError) as error:
            log.warning("queue depth of %s unknown: the host did not answer (%s)", queue,
                        type(error).__name__)
            return None

    def close(self) -> None:
        """Stop sending."""
        self.host.close()


class HostMetrics(Collector):
    """A page process's /metrics: the host's, so a scrape reads the same whichever process
    answers (the engine's step latency is measured where the engine runs: the host)."""

    def __init__(self, host: HostLink):
        self.host = host

    def describe(self):
        return []  # registering must not ask the host

    def collect(self) -> Iterable:
        yield from text_string_to_metric_families(self.host.ask({"op": "metrics"})["text"])


class HostDesk:
    """The host's side of the pipes: what its page processes tell and ask."""

    def __init__(self, jobs, metrics_text: Callable[[], str]):
        self.jobs, self.metrics_text = jobs, metrics_text

    def serve(self, connection: Connection) -> None:
        """Answer one page process until its pipe closes."""
        while True:
            try:
                raw = connection.recv_bytes()
            except (EOFError, OSError):
                return
            try:
                answer = self.handle(json.loads(raw))
            except Exception:  # one bad message must not end the page process's link
                log.exception("a page process sent a message the host could not handle")
                answer = None
            if answer is not None:
                try:
                    connection.send_bytes(json.dumps(answer).encode())
                except OSError:
                    return

    def handle(self, message: object) -> dict | None:
        """Do what ``message`` says; the answer to send back, if it was a question."""
        if not isinstance(message, dict):
            raise ValueError("a message is a JSON object")
        op, number = message.get("op"), message.get("ask")
        if op == "advance":
            self.jobs.advance(_text(message.get("instance"), "instance"))
        elif op == "external":
            args = message.get("args")
            if not isinstance(args, dict):
                raise ValueError("a job's args are a JSON object")
            self.jobs.external(_text(message.get("queue"), "queue"), _text(message.get("kind"), "kind"), args)
        elif op == "depth":
            return {"ask": number, "depth": self.jobs.depth(_text(message.get("queue"), "queue"))}
        elif op == "metrics":
            return {"ask": number, "text": self.metrics_text()}
        else:
            raise ValueError(f"unknown operation {str(op)[:40]!r}")
        return None


def _text(value: object, name: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= TEXT_LIMIT:
        raise ValueError(f"{name} is a text of 1 to {TEXT_LIMIT} characters")
    return value
