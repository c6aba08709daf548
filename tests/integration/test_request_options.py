"""The most cards one request may ask for is an option (TempCardsProcRequest, max_amount): deploy
refuses a value out of range with its line, and a running request follows the version it started
with; on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from engine import bootstrap
from engine.db import unit_of_work
from engine.deploy_errors import DeployError
from tasks.store import Card

REQUEST = "TempCardsProcRequest"


def deploy_options(services, tmp_path, value: str) -> list[str]:
    path = tmp_path / REQUEST
    path.write_text(f"# Maximum amount\nmax_amount = {value}\n")
    return bootstrap.deploy(services, "admin", paths=[path])


def request(services, amount: int) -> dict:
    """Run Request temporary cards to its end with ``amount``; the step's answer."""
    instance_id = services.runtime.start(REQUEST, "op")
    assert services.runner.wait(instance_id, timeout=60)
    task = services.runtime.ready_task(instance_id)
    services.runtime.complete_task(instance_id, task.task_id, {"action": "next", "amount": amount}, "op")
    assert services.runner.wait(instance_id, timeout=60)
    view, task = services.runtime.current(instance_id)
    return {"status": view.status, "notice": task.data.get("notice") if task else None}


def cards(services) -> int:
    with unit_of_work(services.sessions) as session:
        return session.scalar(select(func.count()).select_from(Card))


@pytest.mark.parametrize(("value", "reason"), [
    ("0", "max_amount: must be a whole number from 1 to 99, not 0"),
    ("100", "max_amount: must be a whole number from 1 to 99, not 100"),
    ("True", "max_amount: must be a whole number from 1 to 99, not True"),
    ('"9"', "max_amount: must be a whole number from 1 to 99, not '9'"),
])
def test_a_maximum_out_of_range_is_refused_with_its_line(services, tmp_path, value, reason):
    with pytest.raises(DeployError) as refused:
        deploy_options(services, tmp_path, value)
    assert [(problem.line, problem.reason) for problem in refused.value.problems] == [(2, reason)]


def test_the_maximum_follows_the_option(services, tmp_path):
    assert request(services, 9) == {"status": "completed", "notice": None}
    assert cards(services) == 9
    assert deploy_options(services, tmp_path, "2") == [f"{REQUEST} v2 deployed"]
    refused = request(services, 3)
    assert refused == {"status": "running",
                       "notice": "Amount: request 1 to 2 cards at a time, not 3. Nothing was requested."}
    assert cards(services) == 9
    assert request(services, 2)["status"] == "completed" and cards(services) == 11
