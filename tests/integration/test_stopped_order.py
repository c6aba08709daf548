"""An order whose step fails for good (a bad expression, a script over its bounds) can be cancelled:
its cards are free again and nothing was produced."""

from __future__ import annotations

import shutil

import pytest
from sqlalchemy import func, select

from engine import bootstrap
from engine.db import unit_of_work
from engine.runtime import RuntimeFailure
from engine.store import AuditEvent
from engine.versions import rollback
from tasks.store import Order, Reservation
from tests.integration.flow import PROCESS, add_cards, card_states, order_id, select_and_issue, start

FAILING = ('value=\'order["order_id"]\' />', 'value=\'order["order_id"] // 0\' />')


def test_a_stopped_order_is_cancelled_and_frees_its_cards(services, tmp_path):
    source = tmp_path / "source"
    for folder in ("processes", "forms", "options"):
        shutil.copytree(services.settings.source_path / folder, source / folder)
    bpmn = source / "processes" / f"{PROCESS}.bpmn"
    head, produce = bpmn.read_text().split('id="cards_produce"')
    bpmn.write_text(head + 'id="cards_produce"' + produce.replace(FAILING[0], FAILING[1], 1))
    services.settings.source_path = source
    assert f"{PROCESS} v2 deployed" in bootstrap.deploy(services, "admin")
    add_cards(services, 3)

    instance_id, task = start(services)
    task = select_and_issue(services, instance_id, task, [1, 2])
    services.runtime.complete_task(instance_id, task.task_id, {"action": "next"}, "op")
    assert services.runner.wait(instance_id, timeout=60)
    view = services.runtime.view(instance_id)
    assert view.status == "error" and "division" in view.error

    services.runtime.cancel(instance_id, "op")
    assert services.runtime.view(instance_id).status == "cancelled"
    assert services.runtime.open_instances(user="op") == []
    assert set(card_states(services).values()) == {"requested"}
    cancelled_order = order_id(services, instance_id)
    with unit_of_work(services.sessions) as session:
        assert session.scalar(select(func.count()).select_from(Reservation)) == 0
        assert session.get(Order, cancelled_order).status == "cancelled"
        events = select(AuditEvent.action).where(AuditEvent.instance_id == instance_id)
        assert "instance cancelled" in session.scalars(events).all()
        rollback(session, "process", PROCESS, 1, "admin")
    with pytest.raises(RuntimeFailure, match="Only an order that stopped on an error"):
        services.runtime.cancel(instance_id, "op")

    # The freed cards go into the next order.
    again, task = start(services)
    task = select_and_issue(services, again, task, [1, 2])
    assert task.bpmn_id == "Activity_SelectedCards"
