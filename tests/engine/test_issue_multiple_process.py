"""The shipped "Issue multiple temporary cards" process routes each operator choice as the spec says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine import spiff
from engine.definitions import validate_process


class FakeServices:
    """Records service calls; 'cards_reserve' fails as many times as asked (another order was faster)."""

    def __init__(self, reservations_lost: int = 0):
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.reservations_lost = reservations_lost

    def __call__(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        """Answer like the real handlers, with small plain dicts."""
        self.calls.append((name, params))
        if name == "order_open":
            return {"order_id": 42}
        if name == "cards_reserve":
            self.reservations_lost -= 1
            return {"ok": self.reservations_lost < 0}
        return {"done": True}


def run(spec_json: str, services: FakeServices, answers: list[str]) -> list[str]:
    """Drive the process, answering each user task with the next action; the user tasks seen."""
    engine = spiff.ScriptEngine(environment=spiff.RestrictedEnvironment(services))
    workflow = spiff.new_workflow(spec_json, engine)
    seen = []
    settle(workflow)
    while (task := spiff.ready_user_task(workflow)) is not None:
        seen.append(task.task_spec.bpmn_id)
        task.data["action"] = answers[len(seen) - 1]
        task.run()
        settle(workflow)
    assert workflow.is_completed()
    assert len(seen) == len(answers)
    return seen


def settle(workflow) -> None:
    """Run the engine; where it waits for the stations, the batch's last card answers."""
    workflow.do_engine_steps()
    while "cards produced" in spiff.waiting_messages(workflow):
        assert spiff.catch_message(workflow, "cards produced", {"produced": 1, "failed": 0, "pending": 0})
        workflow.do_engine_steps()


@pytest.fixture
def spec_json(real_bpmn: Path, forms_dir: Path, operators: frozenset[str]) -> str:
    """The shipped process as deploy stores it."""
    return validate_process(real_bpmn, forms_dir, operators).spec_json


def test_issue_produce_repeat_and_complete(spec_json):
    services = FakeServices()
    seen = run(spec_json, services, ["issue", "next", "repeat", "complete"])
    assert seen == ["Activity_SearchCards", "Activity_SelectedCards", "Activity_Review", "Activity_Review"]
    assert services.calls == [
        ("order_open", {}), ("cards_reserve", {"order_id": 42}), ("cards_produce", {"order_id": 42}),
        ("cards_repeat", {"order_id": 42}), ("order_complete", {"order_id": 42, "outcome": "completed"}),
    ]


def test_cards_taken_by_another_order_go_back_to_search(spec_json):
    services = FakeServices(reservations_lost=1)
    seen = run(spec_json, services, ["issue", "issue", "next", "complete"])
    assert seen[:2] == ["Activity_SearchCards", "Activity_SearchCards"]
    assert [name for name, _ in services.calls].count("cards_reserve") == 2


@pytest.mark.parametrize("answers", [["cancel"], ["issue", "cancel"]])
def test_cancel_before_production_releases_and_produces_nothing(spec_json, answers):
    services = FakeServices()
    run(spec_json, services, answers)
    assert services.calls[-1] == ("order_release", {"order_id": 42})
    assert "cards_produce" not in [name for name, _ in services.calls]


def test_cancel_after_production_closes_the_order_as_cancelled(spec_json):
    services = FakeServices()
    run(spec_json, services, ["issue", "next", "cancel"])
    assert services.calls[-1] == ("order_complete", {"order_id": 42, "outcome": "cancelled"})
