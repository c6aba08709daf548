"""The real BPMN in processes/ run through the engine on SQLite: the operator's paths."""

from __future__ import annotations

import json
import shutil

from sqlalchemy import select

from engine import bootstrap
from engine.db import unit_of_work
from engine.store import Instance
from tasks import orders
from tasks.cardsdk.records import CustodySecret, IssuedCertificate
from tasks.store import CardEvent, Order, ProductionAttempt, Reservation
from tests.integration.flow import add_cards, card_states, order_id, select_and_issue, start, submit


def test_select_produce_misprint_repeat_complete(services):
    add_cards(services, 5)
    instance_id, task = start(services)
    assert task.bpmn_id == "Activity_SearchCards"
    task = select_and_issue(services, instance_id, task, [1, 2, 3])
    assert task.bpmn_id == "Activity_SelectedCards"
    task = submit(services, instance_id, task, {"action": "next"})
    assert task.bpmn_id == "Activity_Review"
    states = card_states(services)
    assert [states[f"TC-00000{i}"] for i in (1, 2, 3, 4)] == ["unassigned"] * 3 + ["requested"]

    oid = order_id(services, instance_id)
    with unit_of_work(services.sessions) as session:
        orders.request_repeat(session, oid, [], {2: "colour stripe across the photo area"})
    task = submit(services, instance_id, task, {"action": "repeat"})
    assert task.bpmn_id == "Activity_Review"
    with unit_of_work(services.sessions) as session:
        attempts = session.scalars(select(ProductionAttempt).where(ProductionAttempt.card_id == 2)
                                   .order_by(ProductionAttempt.attempt)).all()
        assert [(a.attempt, a.outcome) for a in attempts] == [(1, "produced"), (2, "produced")]
        assert attempts[0].spoiled_reason == "colour stripe across the photo area"
        assert attempts[0].physical_serial != attempts[1].physical_serial
        certificates = {c.attempt_ref: c for c in session.scalars(
            select(IssuedCertificate).where(IssuedCertificate.attempt_ref.like(f"order-{oid}/card-2/%")))}
        spoiled, remade = (certificates[f"order-{oid}/card-2/attempt-{n}"] for n in (1, 2))
        assert spoiled.revoked_at is not None and "colour stripe" in spoiled.revocation_reason
        assert remade.revoked_at is None

    assert submit(services, instance_id, task, {"action": "complete", "confirm_ok": True}) is None
    assert services.runtime.view(instance_id).status == "completed"
    with unit_of_work(services.sessions) as session:
        assert session.scalars(select(Reservation)).all() == []
        events = session.scalars(select(CardEvent).where(CardEvent.card_id == 1)
                                 .order_by(CardEvent.id)).all()
        assert [(e.from_state, e.to_state) for e in events] == [(None, "requested"),
                                                                 ("requested", "unassigned")]
        assert events[1].process_id == "TempCardsBoProcIssueMultiple" and events[1].process_version == 1
        assert events[1].actor == "op" and events[1].order_id == oid


def test_cancel_before_production_changes_no_card(services):
    add_cards(services, 3)
    instance_id, task = start(services)
    task = select_and_issue(services, instance_id, task, [1, 2])
    assert submit(services, instance_id, task, {"action": "cancel"}) is None
    assert set(card_states(services).values()) == {"requested"}
    with unit_of_work(services.sessions) as session:
        assert session.scalars(select(Reservation)).all() == []
    # The released cards can be taken by the next order.
    other, task = start(services)
    assert select_and_issue(services, other, task, [1, 2]).bpmn_id == "Activity_SelectedCards"


def test_card_taken_by_another_open_order_is_named(services):
    add_cards(services, 3)
    first, task = start(services)
    select_and_issue(services, first, task, [1, 2])
    second, task = start(services, user="op2")
    with unit_of_work(services.sessions) as session:
        try:
            orders.stage_selection(session, order_id(services, second), card_ids=[2, 3])
        except orders.SelectionError as error:
            message = str(error)
    assert message == f"Card TC-000002 is already taken by order {order_id(services, first)}; " \
                      "choose other cards."


def test_workflow_state_holds_no_per_card_data(services):
    add_cards(services, 300)
    instance_id, task = start(services)
    task = select_and_issue(services, instance_id, task, list(range(1, 301)))
    submit(services, instance_id, task, {"action": "next"})
    size = services.runtime.state_size(instance_id)
    with unit_of_work(services.sessions) as session:
        state = session.get(Instance, instance_id).state
    assert "TC-000150" not in state
    assert size < 50_000, size
    assert json.loads(state)


def test_print_only_options_produce_cards_without_touching_a_chip(services, tmp_path):
    source = tmp_path / "source"
    for folder in ("processes", "forms", "options"):
        shutil.copytree(services.settings.source_path / folder, source / folder)
    script = source / "options" / "TempCardsScriptOptions"
    script.write_text(script.read_text().replace("encode_card = True", "encode_card = False")
                      .replace('certificates = ["PIV Authentication"]', "certificates = []"))
    services.settings.source_path = source
    assert "TempCardsScriptOptions v2 deployed" in bootstrap.deploy(services, "admin")
    add_cards(services, 2)
    instance_id, task = start(services)
    task = select_and_issue(services, instance_id, task, [1, 2])
    submit(services, instance_id, task, {"action": "next"})
    assert set(card_states(services).values()) == {"unassigned"}
    with unit_of_work(services.sessions) as session:
        order = session.get(Order, order_id(services, instance_id))
        assert (order.options_version, order.options["encode_card"]) == (2, False)
        serials = session.scalars(select(ProductionAttempt.physical_serial)).all()
        assert all(serial.startswith("PRN-") for serial in serials)
        assert session.scalars(select(CustodySecret)).all() == []
        assert session.scalars(select(IssuedCertificate)).all() == []
