"""The service-task handlers BPMN processes bind to by name: ``handler(params, context) -> dict``.

``context`` is any object with ``instance_id``, ``process_id``, ``process_version``, ``user``
and ``options`` (the engine's ServiceContext); handlers never see Flask or SpiffWorkflow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from tasks import orders
from tasks.assignment_handlers import build_assignment_handlers
from tasks.card_life import build_card_life_handlers
from tasks.errors import CardflowError
from tasks.options import TEMP_CARDS_OPTIONS
from tasks.production import ProductionContext, dispatch_order, repeat_order
from tasks.store import Order


class CallContext(Protocol):
    """What the calling instance tells a handler."""

    instance_id: str
    process_id: str
    process_version: int
    user: str
    options: dict


Handler = Callable[[dict[str, Any], CallContext], dict[str, Any]]


def _order_id(session: Session, params: dict, context: CallContext) -> int:
    """The order the step names, which must be the calling instance's own."""
    order_id = params.get("order_id")
    if not isinstance(order_id, int) or isinstance(order_id, bool):
        raise CardflowError(f"Parameter order_id must be an order number, not {order_id!r}.")
    order = session.get(Order, order_id)
    if order is None or order.instance_id != context.instance_id:
        raise CardflowError(f"Order {order_id} does not belong to this process instance.")
    return order_id


def build_handlers(sessions: sessionmaker[Session], production: ProductionContext) -> dict[str, Handler]:
    """The published handlers, bound to a database and a production station."""

    def order_open(params: dict, context: CallContext) -> dict:
        snapshot = context.options.get(TEMP_CARDS_OPTIONS)
        if snapshot is None:
            raise CardflowError(f"Option script {TEMP_CARDS_OPTIONS} is not deployed; run 'cardflow deploy'.")
        with sessions.begin() as session:
            order = orders.open_order(session, context.instance_id, context.process_id,
                                      context.process_version, TEMP_CARDS_OPTIONS, snapshot["version"],
                                      snapshot["values"], context.user)
            return {"order_id": order.id}

    def cards_reserve(params: dict, context: CallContext) -> dict:
        with sessions.begin() as session:
            return orders.reserve(session, _order_id(session, params, context))

    def cards_produce(params: dict, context: CallContext) -> dict:
        with sessions() as session:
            order_id = _order_id(session, params, context)
        return dispatch_order(replace(production, user=context.user), order_id)

    def cards_repeat(params: dict, context: CallContext) -> dict:
        with sessions() as session:
            order_id = _order_id(session, params, context)
        return repeat_order(replace(production, user=context.user), order_id)

    def order_complete(params: dict, context: CallContext) -> dict:
        with sessions.begin() as session:
            return orders.complete(session, _order_id(session, params, context),
                                   params.get("outcome", "completed"), context.user)

    def order_release(params: dict, context: CallContext) -> dict:
        with sessions.begin() as session:
            return orders.release(session, _order_id(session, params, context), context.user)

    return {
        "order_open": order_open,
        "cards_reserve": cards_reserve,
        "cards_produce": cards_produce,
        "cards_repeat": cards_repeat,
        "order_complete": order_complete,
        "order_release": order_release,
        **build_assignment_handlers(sessions, production),
        **build_card_life_handlers(sessions, production),
    }
