"""Pages from several processes on one port: ``cardflow run --processes N``.

One Python process serves about one core's worth of pages (the interpreter lock lets one thread
run at a time), so a busy console serves from several. The first process is the host: it serves
pages and, as with one process, alone runs the engine, the station and the sweeper. The others
only serve pages. The work their pages cause (engine steps, card jobs) goes to the host over a
pipe, and they ask the host what only it knows: the depth of its queues and its metrics. All of
them accept on the host's listening socket. A browser keeps its connection open for many pages,
so connections are balanced, not left to whichever process wakes first: a process accepts only
while it holds no more open connections than the least busy one (``ConnectionBoard``).

A page process ends with its host, however the host ends (kill -9 included): it watches a pipe
only the host holds open. The host starts a page process again when one dies. Messages are
JSON, never pickle, and carry ids only: the database holds the truth, so a job lost with a dying
process is sent again by the host's sweeper, as with the other job hosts (``engine.jobs``).
"""

from __future__ import annotations

import itertools
import json
import logging
import mmap
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from multiprocessing import Pipe
from multiprocessing.connection import Connection

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from engine.jobs import RemoteJobs

log = logging.getLogger(__name__)

THREADS = 8  # waitress threads a process: pages wait on the database more than on the CPU
ASK_SECONDS = 10.0
RESTART_PAUSE = 5.0  # a page process that dies at once is not restarted in a tight loop
TEXT_LIMIT = 256
NOT_SERVING = 2**31 - 1  # a board's count for a process that is not (yet) accepting


class ConnectionBoard:
    """Every process's open connections, in a file all of them map: process ``slot`` accepts a
    new connection only while it holds no more than the least busy process."""

    def __init__(self, fd: int, processes: int):
        self.fd, self.processes = fd, processes
        self._counts = memoryview(mmap.mmap(fd, 4 * processes)).cast("i")

    @classmethod
    def create(cls, processes: int) -> ConnectionBoard:
        """A new board (an unlinked file: nothing is left behind, even after kill -9)."""
        board_file = tempfile.TemporaryFile()
        board_file.truncate(4 * processes)
        board = cls(os.dup(board_file.fileno()), processes)
        board_file.close()
        for slot in range(processes):
            board.post(slot, NOT_SERVING)
        return board

    def post(self, slot: int, connections: int) -> None:
        """Process ``slot`` holds ``connections``."""
        self._counts[slot] = connections

    def may_accept(self, slot: int) -> bool:
        """Whether process ``slot`` is among the least busy."""
        return self._counts[slot] <= min(self._counts)


def balanced_server(app, listener: socket.socket, board: ConnectionBoard, slot: int):
    """A waitress server on ``listener`` that accepts only while ``board`` says so."""
    from waitress import create_server

    server = create_server(app, sockets=[listener], threads=THREADS, ident="cardflow")
    readable = server.readable

    def balanced_readable() -> bool:
        connections = len(server.active_channels)
        board.post(slot, connections)
        return readable() and board.may_accept(slot)

    server.readable = balanced_readable  # asyncore asks before every wait whether to accept
    return server


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


class PageProcesses:
    """The host's page processes: started, restarted when one dies, stopped with the host."""

    def __init__(self, desk: HostDesk, listener: socket.socket, board: ConnectionBoard, count: int):
        self.desk, self.listener, self.board, self.count = desk, listener, board, count
        self.processes: list[subprocess.Popen | None] = [None] * count
        self._started: list[float] = [0.0] * count
        self._stopping = threading.Event()
        # Only the host holds the write end: when it ends, every page process reads end of file.
        self._lifeline_read, self._lifeline_write = os.pipe()

    def start(self) -> None:
        """Start every page process and the thread that restarts those that die."""
        for slot in range(self.count):
            self._spawn(slot)
        threading.Thread(target=self._watch, name="cardflow-page-processes", daemon=True).start()

    def _spawn(self, slot: int) -> None:
        host_end, page_end = Pipe(duplex=True)
        fds = (self.listener.fileno(), page_end.fileno(), self._lifeline_read, self.board.fd)
        self.board.post(slot + 1, NOT_SERVING)  # until it serves (slot 0 is the host's)
        self.processes[slot] = subprocess.Popen(
            [sys.executable, "-m", "engine.web_processes", *map(str, fds), str(slot + 1),
             str(self.board.processes)], pass_fds=fds)
        self._started[slot] = time.monotonic()
        page_end.close()
        threading.Thread(target=self.desk.serve, args=(host_end,), name=f"cardflow-page-link-{slot}",
                         daemon=True).start()

    def _watch(self) -> None:
        while not self._stopping.wait(0.5):
            for slot, process in enumerate(self.processes):
                if process is None or process.poll() is None or self._stopping.is_set():
                    continue
                self.board.post(slot + 1, NOT_SERVING)  # the others accept meanwhile
                if time.monotonic() - self._started[slot] < RESTART_PAUSE:
                    continue  # it died at once: try again after the pause, not in a tight loop
                log.warning("page process %s ended with %s; starting another", process.pid,
                            process.returncode)
                self._spawn(slot)

    def stop(self) -> None:
        """Stop every page process (they would end with the host anyway)."""
        self._stopping.set()
        for process in self.processes:
            if process is not None and process.poll() is None:
                process.terminate()
        for process in self.processes:
            if process is not None:
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    process.kill()


def listen(host: str, port: int) -> socket.socket:
    """The listening socket every process accepts on."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    return socket.create_server((host, port), family=family, backlog=1024)


def serve(app, services, host: str, port: int, processes: int) -> None:
    """Serve ``app`` (the host's) on ``host:port`` from ``processes`` processes, this one the host."""
    from prometheus_client import generate_latest

    from engine.web import health

    listener = listen(host, port)
    board = ConnectionBoard.create(processes)
    registry = app.extensions[health.METRICS_KEY]
    desk = HostDesk(services.runner, lambda: generate_latest(registry).decode())
    pages = PageProcesses(desk, listener, board, processes - 1)
    server = balanced_server(app, listener, board, 0)
    pages.start()
    try:
        server.run()
    finally:
        pages.stop()


def _end_with_host(lifeline: int) -> None:
    while os.read(lifeline, 1):
        pass
    os._exit(0)  # the host is gone: its port and its jobs go with it


def page_process(listener_fd: int, link_fd: int, lifeline_fd: int, board_fd: int, slot: int,
                 processes: int) -> None:
    """A page process: the console on the inherited socket, its work sent to the host."""
    from engine.bootstrap import build_services
    from engine.config import Settings
    from engine.logs import configure_logging, json_wanted
    from engine.web.app import create_app

    threading.Thread(target=_end_with_host, args=(lifeline_fd,), name="cardflow-host-watch",
                     daemon=True).start()
    configure_logging(json=json_wanted(dict(os.environ)))
    host = HostLink(Connection(link_fd))
    services = build_services(Settings.from_env(), sweep=False,
                              jobs_factory=lambda idle: ForwardedJobs(host, idle))
    app = create_app(services=services, host=host)
    board = ConnectionBoard(board_fd, processes)
    balanced_server(app, socket.socket(fileno=listener_fd), board, slot).run()


if __name__ == "__main__":
    page_process(*map(int, sys.argv[1:7]))
