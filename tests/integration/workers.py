"""Real ``cardflow worker`` processes for the tests and ``bench.stations``/``bench.recovery``:
start them on one instance folder, database and broker, with a queue prefix of their own (so runs
sharing the machine's brokers never consume each other's jobs); the web side wired to the broker;
and the console's steps, which a worker's engine step answers.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from kombu import Connection

from engine import bootstrap
from engine.celery_jobs import ENGINE_QUEUE, QUEUE_PREFIX_ENV, broker_queue
from engine.config import Settings
from engine.db import unit_of_work
from engine.leases import InstanceBusy
from tasks import orders
from tasks.production import pool_queue
from tests.conftest import start_services
from tests.integration.flow import order_id, settle

REDIS_URL = os.environ.get("CARDFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RABBITMQ_URL = os.environ.get("CARDFLOW_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")
BROKERS = {"redis": REDIS_URL, "rabbitmq": RABBITMQ_URL}
CARDFLOW = Path(sys.executable).with_name("cardflow")
READY_SECONDS = 30.0


def write_stations(path: Path, names: list[str], device_seconds: float, pool: str = "default") -> Path:
    """A stations file: ``names`` in one pool, each taking ``device_seconds`` a card."""
    path.write_text("".join(f'[[station]]\nname = "{name}"\npool = "{pool}"\n'
                            f"device_seconds = {device_seconds}\n\n" for name in names))
    return path


class Workers:
    """``cardflow worker`` processes on one instance folder, database and broker."""

    def __init__(self, settings: Settings, broker_url: str, prefix: str, stations_file: Path, logs: Path):
        self.settings, self.broker_url, self.prefix = settings, broker_url, prefix
        self.stations_file, self.logs = stations_file, logs
        self.processes: dict[str, subprocess.Popen] = {}

    def env(self) -> dict[str, str]:
        """What a worker is configured with: the web side's settings, the broker, the stations."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("CARDFLOW_")}
        env.update(CARDFLOW_DATABASE_URL=self.settings.database_url,
                   CARDFLOW_INSTANCE_PATH=str(self.settings.instance_path),
                   CARDFLOW_CA_PASSPHRASE=self.settings.ca_passphrase,
                   CARDFLOW_SECRET_KEY=self.settings.secret_key,
                   CARDFLOW_ORGANISATION=self.settings.organisation,
                   CARDFLOW_BROKER_URL=self.broker_url, CARDFLOW_STATIONS_FILE=str(self.stations_file),
                   **{QUEUE_PREFIX_ENV: self.prefix})
        return env

    def start(self, *stations: str, concurrency: int = 1) -> None:
        """Start one worker per station and wait until each consumes its queues."""
        self.logs.mkdir(parents=True, exist_ok=True)
        for station in stations:
            log = (self.logs / f"{station}.log").open("wb")
            self.processes[station] = subprocess.Popen(
                [str(CARDFLOW), "worker", "--station", station, "--concurrency", str(concurrency)],
                env=self.env(), stdout=log, stderr=subprocess.STDOUT)
            log.close()
        deadline = time.monotonic() + READY_SECONDS
        for station in stations:
            while b" ready." not in self.log(station):
                if self.processes[station].poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"worker {station} did not start:\n{self.log(station).decode()}")
                time.sleep(0.05)

    def log(self, station: str) -> bytes:
        """What the station's worker wrote (stdout and stderr)."""
        path = self.logs / f"{station}.log"
        return path.read_bytes() if path.exists() else b""

    def stop(self) -> None:
        """SIGTERM every worker (a warm shutdown) and wait for it; SIGKILL a worker that hangs."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for station, process in self.processes.items():
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                log = self.log(station).decode()
                raise AssertionError(f"worker {station} ignored SIGTERM:\n{log}") from None
        self.processes.clear()


def delete_queues(broker_url: str, prefix: str, pools: list[str]) -> None:
    """Remove the test's queues (and their exchanges) from the broker."""
    with Connection(broker_url, connect_timeout=5) as connection:
        for name in (ENGINE_QUEUE, *(pool_queue(pool) for pool in pools)):
            queue = broker_queue(name, prefix).name
            for drop in ("queue_delete", "exchange_delete"):
                try:  # a fresh channel each: AMQP closes one on a missing queue or exchange
                    getattr(connection.channel(), drop)(queue)
                except connection.channel_errors:
                    pass


def web_services(settings: Settings, broker_url: str) -> bootstrap.Services:
    """The web side: initialised and deployed as the console has it, then wired to the broker
    (the runtime enqueues engine steps and card jobs to Celery)."""
    start_services(settings).close()
    settings.broker_url = broker_url
    services = bootstrap.build_services(settings)
    assert type(services.runner).__name__ == "CeleryJobs"
    return services


def unique_prefix() -> str:
    """A queue prefix no other test run uses."""
    return f"t{os.getpid()}-{os.urandom(4).hex()}"


def complete(services: bootstrap.Services, instance_id: str, task, data: dict) -> None:
    """Complete a user task as the console does. The instance shows its user task (saved by a
    worker's engine step) a moment before that worker releases its lease: a person never
    notices, a test does, so it tries again as a person would (see the report on issue 8)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            services.runtime.complete_task(instance_id, task.task_id, data, "op")
            return
        except InstanceBusy:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def issue(services: bootstrap.Services, instance_id: str, task, cards: int):
    """Tick cards 1..``cards`` and press Issue multiple temporary cards; returns the next task."""
    with unit_of_work(services.sessions) as session:
        count = orders.stage_selection(session, order_id(services, instance_id),
                                       card_ids=list(range(1, cards + 1)))
    return submit_and_settle(services, instance_id, task,
                             {"action": "issue", "selection": {"selected": count}})


def submit_and_settle(services, instance_id, task, data):
    """Complete ``task`` and wait for the next user task (None when the instance ended)."""
    complete(services, instance_id, task, data)
    return settle(services, instance_id)


class WebServer:
    """``cardflow run`` on a free port: the embedded default, where the web server is the only
    host (in-process runner and station), started, killed and started again like a real one."""

    def __init__(self, settings: Settings, stations_file: Path, processes: int = 1):
        self.port = _free_port()
        self.processes = processes
        self.env = {key: value for key, value in os.environ.items() if not key.startswith("CARDFLOW_")}
        self.env.update(CARDFLOW_DATABASE_URL=settings.database_url,
                        CARDFLOW_INSTANCE_PATH=str(settings.instance_path),
                        CARDFLOW_CA_PASSPHRASE=settings.ca_passphrase,
                        CARDFLOW_SECRET_KEY=settings.secret_key,
                        CARDFLOW_ORGANISATION=settings.organisation,
                        CARDFLOW_STATIONS_FILE=str(stations_file))
        self.process: subprocess.Popen | None = None

    def answering(self) -> bool:
        """Whether the server accepts connections."""
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def start(self) -> float:
        """Start the server; the seconds until it answers."""
        began = time.monotonic()
        self.process = subprocess.Popen([str(CARDFLOW), "run", "--port", str(self.port),
                                         "--processes", str(self.processes)], env=self.env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while not self.answering():
            if self.process.poll() is not None or time.monotonic() - began > READY_SECONDS:
                self.process.kill()
                raise AssertionError("cardflow run did not start")
            time.sleep(0.05)
        return time.monotonic() - began

    def kill(self) -> None:
        """kill -9."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it hangs."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
