"""Orders for the auditor: every batch order, newest first, and one order's full record."""

from __future__ import annotations

from flask import abort, render_template, request
from sqlalchemy import select

from engine.db import read_only
from engine.store import Definition
from engine.web.audit import auditor_only, bp
from engine.web.audit.keyset import KeysetPage, keyset_page, position
from engine.web.audit.order_record import load_order_record
from engine.web.audit.summaries import summary
from engine.web.context import services
from tasks.queries import card_counts, orders_page
from tasks.store import Order

PAGE_SIZE = 50
STATUSES = ("open", "completed", "cancelled")
MAX_NAME = 100
MAX_CARD_NUMBER = 40


def _filter_errors(status: str, operator: str) -> dict[str, str]:
    """What is wrong with the orders filter, by field."""
    errors = {}
    if status and status not in STATUSES:
        errors["status"] = f"Pick a status from the list: {', '.join(STATUSES)}."
    if len(operator) > MAX_NAME or not operator.isprintable():
        errors["operator"] = f"An operator's user name, at most {MAX_NAME} characters."
    return errors


@bp.route("/orders")
@auditor_only
def orders():
    """Every order (of a status, started by an operator), newest first, a keyset page at a time."""
    status = request.args.get("status", "").strip()
    operator = request.args.get("operator", "").strip()
    errors = _filter_errors(status, operator)
    where = position(request.args)
    with read_only(services().sessions) as session:
        page, counts = KeysetPage([], None, None), {}
        if not errors:
            rows = orders_page(session, status or None, operator or None, before_id=where.before,
                               after_id=where.after, limit=PAGE_SIZE + 1)
            page = keyset_page(rows, where, PAGE_SIZE)
            counts = card_counts(session, [order.id for order in page.items])
        process_names = dict(session.execute(select(Definition.process_id, Definition.name)).all())
    query = {name: value for name, value in (("status", status), ("operator", operator)) if value}
    return render_template("audit/orders.html", page=page, counts=counts, process_names=process_names,
                           statuses=STATUSES, status=status, operator=operator, errors=errors,
                           query=query), 400 if errors else 200


@bp.route("/orders/<int:order_id>")
@auditor_only
def order(order_id: int):
    """One order: its process path, versions, option values, cards' attempts and trail entries."""
    cards_after = request.args.get("cards_after", "")
    if len(cards_after) > MAX_CARD_NUMBER or not cards_after.isprintable():
        cards_after = ""
    with read_only(services().sessions) as session:
        found = session.get(Order, order_id)
        if found is None:
            abort(404, f"There is no order {order_id}.")
        record = load_order_record(session, found, cards_after or None)
    return render_template("audit/order.html", record=record, summary=summary, cards_after=cards_after)
