"""The card widgets forms may name: ``card_picker``, ``order_cards`` and ``production_review``.

They keep per-card data in the card tables: a post stages a selection or marks repeats there, and
only a count goes into the workflow data. Domain errors become FormErrors with their message.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from flask import render_template
from markupsafe import Markup

from engine.forms.widgets import FormError, WidgetContext, WidgetRegistry
from engine.web.paging import page_cursor, page_number
from tasks.card_search import COUNT_CAP, CursorError, search_requested
from tasks.errors import CardflowError
from tasks.orders import request_repeat, stage_selection
from tasks.queries import SearchFilter, order_cards, progress

SEARCH_PAGE_SIZE = 50
ORDER_PAGE_SIZE = 100
MAX_NUMBER_LENGTH = 40
MAX_REASON_LENGTH = 500
TRUE_VALUES = ("true", "on", "1")
FILTER_ARGS = ("number", "from", "to")


def register_card_widgets(registry: WidgetRegistry) -> None:
    """Publish the card widgets under the names the form files use."""
    registry.register("card_picker", CardPicker())
    registry.register("order_cards", OrderCards())
    registry.register("production_review", ProductionReview())


def _ids(values: list[str], what: str) -> list[int]:
    """Card ids from check boxes; anything else is a tampered or broken post."""
    if not all(value.isascii() and value.isdigit() and len(value) < 19 for value in values):
        raise FormError(f"The {what} holds a value that is not a card; reload the page and try again.")
    return [int(value) for value in values]


def _require_order(ctx: WidgetContext) -> Any:
    """The order the widget works on; before it exists there is nothing to read or change."""
    if ctx.order is None:
        raise FormError("This order is still being opened; wait a moment and try again.")
    return ctx.order


def read_filter(args: Mapping[str, str]) -> tuple[SearchFilter, list[str]]:
    """The search filter in the query arguments and, for bad values, what is wrong with them."""
    problems = []
    number = args.get("number", "").strip()
    if len(number) > MAX_NUMBER_LENGTH:
        problems.append(f"Card number: enter at most {MAX_NUMBER_LENGTH} characters.")
        number = ""
    days: dict[str, date | None] = {}
    for key, label in (("from", "Requested from"), ("to", "Requested to")):
        raw = args.get(key, "").strip()
        try:
            days[key] = date.fromisoformat(raw) if raw else None
        except ValueError:
            problems.append(f"{label}: enter a date as YYYY-MM-DD, such as 2025-03-31.")
            days[key] = None
    if days["from"] and days["to"] and days["from"] > days["to"]:
        problems.append("Requested from must not be after Requested to.")
    return SearchFilter(number or None, days["from"], days["to"]), problems


class CardPicker:
    """Search the requested cards, page through them, tick some or all matching."""

    def render(self, ctx: WidgetContext) -> Markup:
        """The search fields (sent by GET), the result table with check boxes, count and page links.

        A page link that does not fit (edited, or from another search) shows the first page and
        says so.
        """
        match, problems = read_filter(ctx.args)
        result, notice = None, None
        if not problems:
            try:
                result = search_requested(ctx.session, match, page_cursor(ctx.args), SEARCH_PAGE_SIZE)
            except CursorError as error:
                notice = str(error)
                result = search_requested(ctx.session, match, per_page=SEARCH_PAGE_SIZE)
        posted = ctx.form
        ticked = set(posted.getlist("card")) if posted is not None else set()
        reservation = (ctx.task_data or {}).get("reservation")
        failed = isinstance(reservation, dict) and not reservation.get("ok")
        taken = reservation.get("error") if failed else None
        search = {name: ctx.args[name] for name in FILTER_ARGS if ctx.args.get(name)}
        return Markup(render_template(
            "widgets/card_picker.html", field=ctx.field, args=ctx.args, result=result, problems=problems,
            notice=notice, cap=COUNT_CAP, ticked=ticked,
            select_all=posted is not None and posted.get("select_all") in TRUE_VALUES,
            order_id=ctx.order.id if ctx.order else None, taken=taken,
            links=dict(search, instance_id=ctx.instance_id)))

    def extract(self, form: Any, ctx: WidgetContext) -> Any:
        """Stage the ticked cards (or all that match the search) for the order; return the count."""
        order = _require_order(ctx)
        card_ids = _ids(form.getlist("card"), "card selection")
        match = None
        if form.get("select_all") in TRUE_VALUES:
            match, problems = read_filter(ctx.args)
            if problems:
                raise FormError(" ".join(problems))
            card_ids = []
        try:
            count = stage_selection(ctx.session, order.id, card_ids=card_ids or None, match=match)
        except CardflowError as error:
            raise FormError(str(error)) from None
        return {"selected": count}


class OrderCards:
    """The cards reserved for the order, paginated, read-only."""

    def render(self, ctx: WidgetContext) -> Markup:
        """The reserved cards with their number and state."""
        order = ctx.order
        cards = order_cards(ctx.session, order.id, page=page_number(ctx.args), per_page=ORDER_PAGE_SIZE) \
            if order else None
        return Markup(render_template("widgets/order_cards.html", cards=cards, args=ctx.args,
                                      instance_id=ctx.instance_id))

    def extract(self, form: Any, ctx: WidgetContext) -> Any:
        """How many cards the order holds; an order without cards cannot go on."""
        order = _require_order(ctx)
        total = progress(ctx.session, order.id)["total"]
        if not total:
            raise FormError("No cards are reserved for this order; click Cancel and start again.")
        return {"count": total}


class ProductionReview:
    """Each card's outcome and previews; pick failed or misprinted cards for Repeat production."""

    def render(self, ctx: WidgetContext) -> Markup:
        """The outcome table with preview images, repeat and misprint check boxes, reasons."""
        order = _require_order(ctx)
        cards = order_cards(ctx.session, order.id, page=page_number(ctx.args), per_page=ORDER_PAGE_SIZE)
        posted = ctx.form
        return Markup(render_template(
            "widgets/production_review.html", cards=cards, counts=progress(ctx.session, order.id),
            repeat=set(posted.getlist("repeat")) if posted is not None else set(),
            misprint=set(posted.getlist("misprint")) if posted is not None else set(),
            reasons=posted if posted is not None else {}, args=ctx.args, instance_id=ctx.instance_id))

    def extract(self, form: Any, ctx: WidgetContext) -> Any:
        """On Repeat production mark the picked cards; on Complete order report the counts."""
        order = _require_order(ctx)
        repeat = _ids(form.getlist("repeat"), "repeat selection")
        misprinted = _ids(form.getlist("misprint"), "misprint selection")
        if ctx.action != "repeat":
            if repeat or misprinted:
                raise FormError("Cards are ticked for production again: click \u201cRepeat production\u201d, "
                                "or untick them to complete the order.")
            counts = progress(ctx.session, order.id)
            return {"produced": counts["produced"], "failed": counts["failed"]}
        misprints = {card_id: form.get(f"reason_{card_id}", "").strip() for card_id in misprinted}
        if any(len(reason) > MAX_REASON_LENGTH for reason in misprints.values()):
            raise FormError(f"A misprint reason can have at most {MAX_REASON_LENGTH} characters.")
        try:
            count = request_repeat(ctx.session, order.id, repeat, misprints)
        except CardflowError as error:
            raise FormError(str(error)) from None
        return {"repeat": count}
