"""Everything an auditor reads about one order, gathered in one transaction.

The process version it ran (its diagram, with the path taken), the option version and the values
it snapshotted, its process steps as the trail recorded them, every card's production attempts,
and its latest trail entries.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.audit_export import AuditFilters, filtered_entries
from engine.instance_path import InstancePath, path_of
from engine.store import AuditEvent, Definition, Instance, OptionVersion
from engine.versions import get_version
from tasks.queries import CardAttempts, card_counts, order_card_attempts
from tasks.store import Order

# The entries that tell how the instance went through its process, step by step.
STEP_EVENTS = ("instance started", "task completed", "instance error", "instance retried", "instance resumed",
               "instance cancelled", "instance completed")
MAX_STEPS = 500
CARDS_PER_PAGE = 100
LATEST_ENTRIES = 20


@dataclass(frozen=True)
class OrderRecord:
    """One order as the auditor's order page shows it."""

    order: Order
    instance: Instance | None
    process: Definition | None
    options: OptionVersion | None
    path: InstancePath | None
    counts: dict[str, int]
    cards: list[CardAttempts]
    next_cards: str | None  # the card number the next page of cards starts after
    steps: list[AuditEvent]
    entries: list[AuditEvent]
    more_entries: bool

    def diagram(self) -> dict | None:
        """What the diagram script draws: the process XML and the path's bpmn ids."""
        if self.process is None or self.path is None:
            return None
        return {"xml": self.process.bpmn_xml, "completed": self.path.completed, "current": self.path.current,
                "cancelled": self.path.cancelled, "stopped": self.path.status == "error"}


def load_order_record(session: Session, order: Order, cards_after: str | None = None) -> OrderRecord:
    """The record of ``order``; its cards from the one after number ``cards_after``."""
    instance = session.get(Instance, order.instance_id)
    # The definition the instance really ran; the order's own columns name the same version.
    process = (session.get(Definition, instance.definition_id) if instance is not None
               else get_version(session, "process", order.process_id, order.process_version))
    cards = order_card_attempts(session, order.id, after_number=cards_after, limit=CARDS_PER_PAGE + 1)
    steps = list(session.scalars(select(AuditEvent).where(AuditEvent.instance_id == order.instance_id,
                                                          AuditEvent.action.in_(STEP_EVENTS))
                                 .order_by(AuditEvent.id).limit(MAX_STEPS)))
    entries = filtered_entries(session, AuditFilters(order_id=order.id), limit=LATEST_ENTRIES + 1)
    return OrderRecord(
        order=order, instance=instance, process=process,
        options=get_version(session, "option", order.options_name, order.options_version),
        path=path_of(session, order.instance_id) if instance is not None else None,
        counts=card_counts(session, [order.id])[order.id],
        cards=cards[:CARDS_PER_PAGE],
        next_cards=cards[CARDS_PER_PAGE - 1].number if len(cards) > CARDS_PER_PAGE else None,
        steps=steps, entries=entries[:LATEST_ENTRIES], more_entries=len(entries) > LATEST_ENTRIES)
