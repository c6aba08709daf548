"""The service-task handlers of Assign and Withdraw temporary card (``handler(params, context)``).

Each works on the card the calling instance holds (tasks.card_holds), in one transaction.
"""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from tasks import card_assignment
from tasks.card_assignment import Step
from tasks.options import TEMP_CARDS_OPTIONS
from tasks.production import ProductionContext, drain_revocations


def _step(context) -> Step:
    return Step(context.instance_id, context.user, context.process_id, context.process_version)


def build_assignment_handlers(sessions: sessionmaker[Session], production: ProductionContext) -> dict:
    """``card_assign``, ``card_assign_undo``, ``card_withdraw`` and ``card_reencode_open``."""

    def card_assign(params: dict, context) -> dict:
        with sessions.begin() as session:
            return card_assignment.assign(session, _step(context), params.get("holder_id"), context.options)

    def card_assign_undo(params: dict, context) -> dict:
        with sessions.begin() as session:
            return card_assignment.undo_unlettered(session, _step(context))

    def card_withdraw(params: dict, context) -> dict:
        with sessions.begin() as session:
            result = card_assignment.withdraw(session, _step(context))
        # Revoke now rather than at the next sweep; a crash here leaves the queue to the sweepers.
        drain_revocations(production)
        return result

    def card_reencode_open(params: dict, context) -> dict:
        with sessions.begin() as session:
            return card_assignment.open_reencoding(session, _step(context), context.options,
                                                   TEMP_CARDS_OPTIONS)

    return {"card_assign": card_assign, "card_assign_undo": card_assign_undo, "card_withdraw": card_withdraw,
            "card_reencode_open": card_reencode_open}
