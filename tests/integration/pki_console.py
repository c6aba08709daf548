"""The console as a relying party sees it: serving /pki/ on a loopback port that its certificates
name, after an order of two cards whose second was misprinted and produced again."""

from __future__ import annotations

import shutil
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from werkzeug.serving import make_server

from engine.bootstrap import Services
from engine.config import PROJECT_ROOT, Settings
from engine.db import unit_of_work
from engine.web.app import create_app
from tasks import orders
from tests.conftest import start_services
from tests.integration.flow import add_cards, order_id, select_and_issue, start, submit


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def copy_sources(target: Path) -> Path:
    """A copy of the shipped processes, forms and options in ``target``, to deploy from."""
    for name in ("processes", "forms", "options"):
        shutil.copytree(PROJECT_ROOT / name, target / name)
    return target


@contextmanager
def misprinted_order_console(settings: Settings, misprint: str) -> Iterator[tuple[Services, int]]:
    """Serve the console on the port ``settings.public_base_url`` will name, run an order of two
    cards, mark card 2 misprinted with ``misprint`` and produce it again; yields (services, order)."""
    port = free_port()
    settings.public_base_url = f"http://127.0.0.1:{port}"
    services = start_services(settings)
    server = make_server("127.0.0.1", port, create_app(services=services), threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="pki-console", daemon=True)
    thread.start()
    try:
        add_cards(services, 2)
        instance_id, task = start(services)
        task = select_and_issue(services, instance_id, task, [1, 2])
        task = submit(services, instance_id, task, {"action": "next"})
        assert task.bpmn_id == "Activity_Review"
        oid = order_id(services, instance_id)
        with unit_of_work(services.sessions) as session:
            orders.request_repeat(session, oid, [], {2: misprint})
        task = submit(services, instance_id, task, {"action": "repeat"})
        assert task.bpmn_id == "Activity_Review"
        yield services, oid
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        services.close()
