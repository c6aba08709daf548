"""A crash loses no card and produces no card twice; an interrupted order resumes."""

from __future__ import annotations

from sqlalchemy import select

from engine import bootstrap
from engine.db import unit_of_work
from tasks.production import INTERRUPTED
from tasks.store import ProductionAttempt
from tests.integration.flow import (
    card_states,
    next_pressed_then_host_died,
    order_id,
    settle,
)


def test_order_left_mid_way_resumes_after_restart(services, settings):
    # The process stops right after the operator pressed Next: the step is saved, nothing ran.
    instance_id = next_pressed_then_host_died(services, 3)
    # A production attempt the crash left open: the printer may or may not have printed it.
    with unit_of_work(services.sessions) as session:
        session.add(ProductionAttempt(order_id=order_id(services, instance_id), card_id=1, attempt=1,
                                      outcome="started"))
    services.close()

    restarted = bootstrap.build_services(settings)
    try:
        assert bootstrap.resume_pending(restarted) == 1
        task = settle(restarted, instance_id)
        assert task.bpmn_id == "Activity_Review"
        states = card_states(restarted)
        assert (states["TC-000001"], states["TC-000002"], states["TC-000003"]) == (
            "failed", "unassigned", "unassigned")
        with unit_of_work(restarted.sessions) as session:
            attempts = session.scalars(select(ProductionAttempt).order_by(ProductionAttempt.card_id)).all()
        assert [(a.card_id, a.attempt, a.outcome) for a in attempts] == [
            (1, 1, "interrupted"), (2, 1, "produced"), (3, 1, "produced")]
        assert attempts[0].error == INTERRUPTED
    finally:
        restarted.close()
