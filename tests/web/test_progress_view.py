"""While the engine works, the order page shows progress and polls its status by itself."""

from __future__ import annotations

from dataclasses import replace

import pytest

from engine.runtime import Runtime
from engine.web.app import create_app


@pytest.fixture
def app(services):
    """The console on a runtime whose work is only queued when the test says so."""
    held = Runtime(services.sessions, services.registry, submit=lambda instance_id: None)
    app = create_app(services=replace(services, runtime=held))
    app.config["TESTING"] = True
    return app


def test_progress_view_until_the_next_step_is_ready(login, services, requested_cards):
    op = login()
    instance_id = op.start()
    page = op.get(f"/orders/{instance_id}").get_data(as_text=True)
    assert "<h1>Working on the order</h1>" in page
    assert f'data-status-url="/orders/{instance_id}/status"' in page and "/static/console.js" in page
    status = op.get(f"/orders/{instance_id}/status").get_json()
    assert status["busy"] is True and status["waiting_on"] is None

    services.runner.submit(instance_id)
    assert services.runner.wait(instance_id, timeout=60)
    status = op.get(f"/orders/{instance_id}/status").get_json()
    assert status["busy"] is False and status["waiting_on"] == "Search cards"
    assert "<h1>Search cards</h1>" in op.get(f"/orders/{instance_id}").get_data(as_text=True)

