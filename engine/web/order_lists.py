"""The two lists of BATCH ORDERS: the operator's open orders, and every finished order, searched.

An open order is where its instance stands (from the engine) with its number, its cards and
whether it has produced anything (from the order tables): one that has not can be discarded.
Finished orders are a keyset page of the orders table, newest first, never an offset, searched
by order number, operator and day.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.runtime import InstanceView
from engine.store import Definition
from engine.users import NAME_PATTERN
from engine.web.audit.keyset import KeysetPage, Position, keyset_page
from tasks.orders import produced_orders
from tasks.queries import card_counts, orders_of_instances, orders_page
from tasks.search_terms import TermError, read_day

FINISHED = ("completed", "cancelled")
PAGE_SIZE = 25
# "42", "#42" or "order 42": the digits are the order's number.
ORDER_NUMBER = re.compile(r"(?:order\s*)?#?\s*([0-9]{1,12})", re.IGNORECASE)
SEARCH_FIELDS = (("number", "Order number"), ("operator", "Operator"), ("day", "Date"))


@dataclass(frozen=True)
class OpenOrder:
    """An open order as its row shows it."""

    view: InstanceView
    order_id: int | None  # None until the instance has opened its order
    cards: dict[str, int]
    discardable: bool  # open, produced nothing, and waiting for the operator or stopped


def open_orders(session: Session, views: list[InstanceView]) -> list[OpenOrder]:
    """The rows of ``views`` (open instances): their order's number, cards and whether each can
    be discarded now."""
    numbers = orders_of_instances(session, [view.id for view in views])
    counts = card_counts(session, list(numbers.values()))
    produced = produced_orders(session, list(numbers.values()))
    rows = []
    for view in views:
        order_id = numbers.get(view.id)
        idle = view.status == "error" or view.waiting_on is not None
        rows.append(OpenOrder(view, order_id, counts.get(order_id, {"total": 0}),
                              idle and order_id not in produced))
    return rows


@dataclass
class FinishedSearch:
    """The finished-orders search as read: what it matches, what each field shows, what is wrong."""

    number: int | None = None
    operator: str | None = None
    day: date | None = None
    shown: dict[str, str] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)

    @property
    def query(self) -> dict[str, str]:
        """The search's query arguments, for links to other pages of it."""
        return {name: value for name, value in self.shown.items() if value}


def read_search(args: Mapping[str, str]) -> FinishedSearch:
    """The search in the query arguments, each field read as an operator types it."""
    search = FinishedSearch(shown={name: args.get(name, "").strip()[:100] for name, _label in SEARCH_FIELDS})
    typed = search.shown["number"]
    if typed:
        match = ORDER_NUMBER.fullmatch(typed) if typed.isascii() else None
        if match is None:
            search.problems["number"] = "Order number: type the order's number, such as 42."
        else:
            search.number = int(match[1])
            search.shown["number"] = match[1]
    name = search.shown["operator"]
    if name:
        if NAME_PATTERN.fullmatch(name):
            search.operator = name
        else:
            search.problems["operator"] = ("Operator: type a user name as it is written, such as op "
                                           "(letters, digits and . _ @ -).")
    try:
        search.day = read_day(search.shown["day"], "Date")
    except TermError as error:
        search.problems["day"] = str(error)
    if search.day:
        search.shown["day"] = search.day.isoformat()
    return search


@dataclass(frozen=True)
class FinishedOrders:
    """A page of finished orders with their cards and process names."""

    page: KeysetPage
    counts: dict[int, dict[str, int]]
    process_names: dict[str, str]


def finished_orders(session: Session, search: FinishedSearch, where: Position) -> FinishedOrders:
    """The page of finished orders at ``where`` that match ``search``, newest first."""
    rows = orders_page(session, FINISHED, search.operator, before_id=where.before, after_id=where.after,
                       limit=PAGE_SIZE + 1, number=search.number, day=search.day)
    page = keyset_page(rows, where, PAGE_SIZE)
    process_names = dict(session.execute(select(Definition.process_id, Definition.name).distinct()).all())
    return FinishedOrders(page, card_counts(session, [order.id for order in page.items]), process_names)
