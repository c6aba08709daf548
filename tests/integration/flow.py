"""Driving the real TempCardsBoProcIssueMultiple process through the runtime, as the console does."""

from __future__ import annotations

from engine.bootstrap import Services
from engine.db import unit_of_work
from engine.runtime import Runtime
from tasks import orders, queries
from tasks.demo import add_requested_cards

PROCESS = "TempCardsBoProcIssueMultiple"


def add_cards(services: Services, count: int) -> None:
    """Requested cards TC-000001... to issue."""
    with unit_of_work(services.sessions) as session:
        add_requested_cards(session, count, "Test Organisation")


def settle(services: Services, instance_id: str, timeout: float = 120):
    """Wait for the runner, then return the ready user task (None when the instance ended)."""
    assert services.runner.wait(instance_id, timeout=timeout), "the runner did not finish in time"
    view = services.runtime.view(instance_id)
    assert view.status != "error", view.error
    return services.runtime.ready_task(instance_id)


def order_id(services: Services, instance_id: str) -> int:
    """The order of an instance."""
    with unit_of_work(services.sessions) as session:
        return queries.order_for_instance(session, instance_id).id


def start(services: Services, user: str = "op") -> tuple[str, object]:
    """Start an order; returns the instance id and its first ready task (Search cards)."""
    instance_id = services.runtime.start(PROCESS, user)
    return instance_id, settle(services, instance_id)


def submit(services: Services, instance_id: str, task, data: dict, user: str = "op", timeout: float = 120):
    """Complete ``task`` with ``data`` and return the next ready task."""
    services.runtime.complete_task(instance_id, task.task_id, data, user)
    return settle(services, instance_id, timeout)


def select_and_issue(services: Services, instance_id: str, task, card_ids: list[int]):
    """Tick cards and press Issue multiple temporary cards; returns the next task."""
    with unit_of_work(services.sessions) as session:
        count = orders.stage_selection(session, order_id(services, instance_id), card_ids=card_ids)
    return submit(services, instance_id, task, {"action": "issue", "selection": {"selected": count}})


def next_pressed_then_host_died(services: Services, cards: int) -> str:
    """An order of cards 1..``cards`` whose operator pressed Next on a host that died before
    running anything after it: the step is saved, the engine steps are due. Its instance id."""
    add_cards(services, cards)
    instance_id, task = start(services)
    task = select_and_issue(services, instance_id, task, list(range(1, cards + 1)))
    queued: list[str] = []
    Runtime(services.sessions, services.registry, queued.append).complete_task(
        instance_id, task.task_id, {"action": "next"}, "op")
    assert queued == [instance_id]  # handed to a job host that is gone
    return instance_id


def card_states(services: Services) -> dict[str, str]:
    """Card number -> state."""
    with unit_of_work(services.sessions) as session:
        return {card.number: card.state for card in queries.list_cards(session)}
