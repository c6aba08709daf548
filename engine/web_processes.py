"""Pages from several processes on one port: ``cardflow run --processes N``.

One Python process serves about one core's worth of pages (the interpreter lock lets one thread
run at a time), so a busy console serves from several. With N processes, N page processes serve
the pages, and the process that starts them, the host, serves none: it alone runs the engine,
the station and the sweeper, as a single process does, on an interpreter lock of its own. So
under load an order's steps and its production never queue behind pages (when the host served
pages too, pressing "Issue multiple temporary cards" at full load took 1.6 s instead of 0.3 s,
the engine getting a ninth of one lock). The work the pages cause (engine steps, card jobs) goes
to the host over a pipe, and they ask the host what only it knows: the depth of its queues and
its metrics (``engine.host_link``). The page processes accept on the host's listening socket. A
browser keeps its connection open for many pages, so connections are balanced, not left to
whichever process wakes first: a process accepts only while it holds no more open connections
than the least busy one (``ConnectionBoard``).

A page process ends with its host, however the host ends (kill -9 included): it watches a pipe
only the host holds open. The host starts a page process again when one dies.
"""

from __future__ import annotations

import logging
import mmap
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from multiprocessing import Pipe
from multiprocessing.connection import Connection

from engine.host_link import ForwardedJobs, HostDesk, HostLink

log = logging.getLogger(__name__)

THREADS = 8  # waitress threads a process: pages wait on the database more than on the CPU
RESTART_PAUSE = 5.0  # a page process that dies at once is not restarted in a tight loop
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
        self.board.post(slot, NOT_SERVING)  # until it serves
        self.processes[slot] = subprocess.Popen(
            [sys.executable, "-m", "engine.web_processes", *map(str, fds), str(slot),
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
                self.board.post(slot, NOT_SERVING)  # the others accept meanwhile
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
    """Serve pages on ``host:port`` from ``processes`` page processes; this process, the host,
    runs their work until it is interrupted. ``app`` is the host's: its metrics are the ones a
    scrape of any page process reads."""
    from prometheus_client import generate_latest

    from engine.web import health

    listener = listen(host, port)
    board = ConnectionBoard.create(processes)
    registry = app.extensions[health.METRICS_KEY]
    desk = HostDesk(services.runner, lambda: generate_latest(registry).decode())
    pages = PageProcesses(desk, listener, board, processes)
    pages.start()
    try:
        while True:
            time.sleep(3600)  # the engine, station and sweeper threads work; a signal ends this
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
    from engine.warm_start import ready_to_serve
    from engine.web.app import create_app

    threading.Thread(target=_end_with_host, args=(lifeline_fd,), name="cardflow-host-watch",
                     daemon=True).start()
    configure_logging(json=json_wanted(dict(os.environ)))
    host = HostLink(Connection(link_fd))
    services = build_services(Settings.from_env(), sweep=False,
                              jobs_factory=lambda idle: ForwardedJobs(host, idle))
    app = create_app(services=services, host=host)
    ready_to_serve(app)
    board = ConnectionBoard(board_fd, processes)
    balanced_server(app, socket.socket(fileno=listener_fd), board, slot).run()


if __name__ == "__main__":
    page_process(*map(int, sys.argv[1:7]))
