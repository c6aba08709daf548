"""The card widgets forms may name: ``card_picker``, ``order_cards`` and ``production_review``.

They keep per-card data in the card tables: a post keeps a selection or marks repeats there, and
only a count goes into the workflow data. Domain errors become FormErrors with their message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from flask import render_template
from markupsafe import Markup

from engine.forms.widgets import FormError, Redraw, WidgetContext, WidgetRegistry
from engine.web.paging import page_cursor, page_number
from tasks.card_search import COUNT_CAP, CursorError, number_letters, search_requested
from tasks.card_selection import (
    change_selection,
    clear_selection,
    select_available,
    select_matching,
    selected_among,
    selected_count,
    selected_numbers,
)
from tasks.errors import CardflowError
from tasks.orders import repeat_problem, request_repeat, selection_problem
from tasks.queries import SearchFilter, order_cards, progress
from tasks.search_terms import TermError, read_day, read_number_prefix

SEARCH_PAGE_SIZE = 50
ORDER_PAGE_SIZE = 100
MAX_REASON_LENGTH = 500
# A post ticks cards of one page (50): far more is not a browser's.
MAX_POSTED_IDS = 500
# A search field takes 40 characters; a posted search far longer is not typed.
MAX_TYPED_SEARCH = 200
# The selected cards the picker lists by number; beyond them it says how many more.
SELECTION_LISTED = 100
# The picker's in-step buttons (see CardPicker).
IN_STEP = frozenset({"search", "keep", "select_page", "clear"})
TRUE_VALUES = ("true", "on", "1")
FILTER_FIELDS = (("number", "Card number"), ("from", "Requested from"), ("to", "Requested to"))
NOTHING_SELECTED = "Select at least one card, or tick \"Select all matching\"."


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


@dataclass
class SearchTerms:
    """The search fields as read: the filter, what each field shows, and what is wrong with each."""

    match: SearchFilter
    shown: dict[str, str]  # field -> as read (ISO date, capitals), or as typed when it is wrong
    problems: dict[str, str] = field(default_factory=dict)  # field -> what is wrong with it


def read_filter(args: Mapping[str, str], session: Any) -> SearchTerms:
    """The search filter in the query arguments, each field read as operators type it.

    A number typed as digits only gets the letters of the requested cards' numbers (``000123``
    searches ``TC-000123``; see NumberPrefix.written).
    """
    problems: dict[str, str] = {}
    shown = {name: args.get(name, "").strip() for name, _label in FILTER_FIELDS}
    number = None
    try:
        prefix = read_number_prefix(args.get("number", ""), "Card number")
        if prefix is not None:
            number = shown["number"] = prefix.written(
                number_letters(session) if prefix.letters is None else (), "Card number")
    except TermError as error:
        problems["number"] = str(error)
    days: dict[str, date | None] = {}
    for name, label in FILTER_FIELDS[1:]:
        try:
            days[name] = read_day(args.get(name, ""), label)
        except TermError as error:
            problems[name], days[name] = str(error), None
        if days[name]:
            shown[name] = days[name].isoformat()
    if days["from"] and days["to"] and days["from"] > days["to"]:
        problems["to"] = (f"Requested to ({shown['to']}) is before Requested from ({shown['from']}); "
                          "change one of them.")
    return SearchTerms(SearchFilter(number, days["from"], days["to"]), shown, problems)


@dataclass
class Problem:
    """Something wrong on the picker, and the id of the element at fault (the summary links to it)."""

    message: str
    target: str


@dataclass
class PickerPost:
    """The picker's part of a post: the ticked cards, the cards the page showed (unticked ones
    leave the selection), and whether all matching cards are wanted."""

    ticked: list[int]
    shown: list[int]
    select_all: bool

    @classmethod
    def read(cls, form: Any) -> PickerPost:
        """The post's card ids; FormError when they are not card ids, or far more than a page."""
        ticked, shown = form.getlist("card"), form.getlist("shown")
        if len(ticked) > MAX_POSTED_IDS or len(shown) > MAX_POSTED_IDS:
            raise FormError("The post holds more cards than a page shows; reload the page and try again.")
        return cls(_ids(ticked, "card selection"), _ids(shown, "card selection"),
                   form.get("select_all") in TRUE_VALUES)


class CardPicker:
    """Search the requested cards, page through them, tick some or all matching: the selection is
    kept in the order's staged cards across pages and searches.

    The form may give the picker in-step buttons (``"complete": false``, ``"field"`` naming the
    picker's field), which it then draws: ``search`` (the Search button: the ticks are kept and
    the new search shown), ``keep`` (the page buttons: the ticks are kept and the other page
    shown), ``select_page`` and ``clear``. Without them the search and the page links are plain
    links, as forms deployed before them expect. Any post keeps the page's ticks first.
    """

    def render(self, ctx: WidgetContext) -> Markup:
        """What is wrong (summed up first), the search fields, the selection so far, the result
        table with check boxes, count and page buttons.

        A page link that does not fit (edited, or from another search) shows the first page and
        says so: a notice, not an error, since the operator did nothing wrong.
        """
        terms = read_filter(ctx.args, ctx.session)
        order_id = ctx.order.id if ctx.order else None
        result, notice = None, None
        if not terms.problems:
            try:
                result = search_requested(ctx.session, terms.match, page_cursor(ctx.args), SEARCH_PAGE_SIZE)
            except CursorError as error:
                notice = str(error)
                result = search_requested(ctx.session, terms.match, per_page=SEARCH_PAGE_SIZE)
        problems = [Problem(message, f"search-{name}") for name, message in terms.problems.items()]
        reservation = (ctx.task_data or {}).get("reservation")
        if isinstance(reservation, dict) and not reservation.get("ok") and ctx.form is None:
            problems.append(Problem(str(reservation.get("error")), "picker-cards"))
        select_all = False
        selected = selected_count(ctx.session, order_id) if order_id else 0
        if ctx.form is not None:
            ticked = set(ctx.form.getlist("card"))
            select_all = ctx.form.get("select_all") in TRUE_VALUES
            if ctx.action is not None and order_id is not None and not terms.problems:
                problems += self._post_problems(ctx, order_id)
            if ctx.error and not problems:
                problems.append(Problem(ctx.error, "picker-cards"))
        else:
            # With nothing selected yet (most pages of a search), nothing on the page is ticked.
            on_page = [row.id for row in result.items] if result and selected else []
            ticked = {str(card_id) for card_id in selected_among(ctx.session, order_id, on_page)}
        numbers = selected_numbers(ctx.session, order_id, SELECTION_LISTED) if selected else []
        search = {name: terms.shown[name] for name, _label in FILTER_FIELDS if terms.shown[name]}
        return Markup(render_template(
            "widgets/card_picker.html", field=ctx.field, terms=terms, result=result, problems=problems,
            faults={problem.target: problem.message for problem in problems}, notice=notice, cap=COUNT_CAP,
            ticked=ticked, select_all=select_all, order_id=order_id, posted=ctx.form is not None,
            selected=selected, selected_numbers=numbers, post_url=ctx.post_url,
            buttons={action.name: action for action in ctx.actions}, search=search,
            links=dict(search, instance_id=ctx.instance_id)))

    def extract(self, form: Any, ctx: WidgetContext) -> Any:
        """Keep the page's ticks in the order's selection, do what the button asks (select the
        page, clear, search again, select all matching), and on Issue return the count."""
        order = _require_order(ctx)
        post = PickerPost.read(form)
        try:
            if ctx.action == "clear":
                clear_selection(ctx.session, order.id)
                return None
            problems = self._post_problems(ctx, order.id, post)
            if problems:
                raise FormError(" ".join(problem.message for problem in problems))
            change_selection(ctx.session, order.id, add=post.ticked, remove=post.shown)
            if ctx.action == "select_page":
                select_available(ctx.session, order.id, post.shown)
            if post.select_all:
                terms = read_filter(ctx.args, ctx.session)
                if terms.problems:
                    raise FormError(" ".join(terms.problems.values()))
                select_matching(ctx.session, order.id, terms.match)
        except CardflowError as error:
            raise FormError(str(error)) from None
        if ctx.action == "search":
            return Redraw(_typed_search(form))
        if ctx.action in IN_STEP:
            return None
        count = selected_count(ctx.session, order.id)
        if not count:
            raise FormError("No available requested card matches; change the search." if post.select_all
                            else NOTHING_SELECTED)
        return {"selected": count}

    @staticmethod
    def _post_problems(ctx: WidgetContext, order_id: int, post: PickerPost | None = None) -> list[Problem]:
        """What is wrong with the post's cards (reads only): extract refuses the post with these,
        and the page drawn again shows them at the top and next to the card at fault."""
        if post is None:
            try:
                post = PickerPost.read(ctx.form)
            except FormError as error:
                return [Problem(str(error), "picker-cards")]
        if ctx.action == "clear":
            return []
        problem = selection_problem(ctx.session, order_id, post.ticked)
        if problem is not None:
            at = "picker-cards" if problem.card_id is None else f"card-{problem.card_id}"
            return [Problem(problem.message, at)]
        if ctx.action not in IN_STEP and not post.ticked and not post.select_all:
            unticked = selected_among(ctx.session, order_id, post.shown)
            if selected_count(ctx.session, order_id) == len(unticked):
                return [Problem(NOTHING_SELECTED, "picker-cards")]
        return []


def _typed_search(form: Any) -> dict[str, str]:
    """The search the operator typed, posted with the Search button, as query arguments; a value
    no operator types (far longer than a field takes) is refused."""
    typed = {name: form.get(name, "").strip() for name, _label in FILTER_FIELDS}
    if any(len(value) > MAX_TYPED_SEARCH for value in typed.values()):
        raise FormError(f"A search field holds more than {MAX_TYPED_SEARCH} characters; shorten it.")
    return {name: value for name, value in typed.items() if value}


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
    """Each card's outcome and previews; pick failed or misprinted cards for Repeat production.

    The counts and the two decisions stay in view in a bar on top of the cards, failed cards come
    first, and what is wrong with a post is said at the top. Complete order with failed cards asks
    first: the page drawn again says how many failed, and only a post with the tick that accepts
    them (its value is that number, so a changed count asks again) completes the order.
    """

    PAGE_SIZE = 50
    ACCEPT_FAILED = "accept_failed"
    TICKED_FOR_REPEAT = ("Cards are ticked for production again: click \u201cRepeat production\u201d, "
                         "or untick them to complete the order.")

    def render(self, ctx: WidgetContext) -> Markup:
        """The bar (counts, Repeat production, Complete order), the post's problems or the question
        about failed cards, then the outcome table with previews, check boxes and reasons."""
        order = _require_order(ctx)
        counts = progress(ctx.session, order.id)
        cards = order_cards(ctx.session, order.id, page=page_number(ctx.args), per_page=self.PAGE_SIZE,
                            failed_first=True)
        posted = ctx.form
        problems = self._problems(ctx, order.id) if posted is not None and ctx.action else []
        ask = (posted is not None and ctx.action == "complete" and not problems
               and not self._failed_accepted(posted, counts))
        return Markup(render_template(
            "widgets/production_review.html", cards=cards, counts=counts, problems=problems, ask=ask,
            accept_name=self.ACCEPT_FAILED,
            repeat=set(posted.getlist("repeat")) if posted is not None else set(),
            misprint=set(posted.getlist("misprint")) if posted is not None else set(),
            reasons=posted if posted is not None else {}, args=ctx.args, instance_id=ctx.instance_id))

    def extract(self, form: Any, ctx: WidgetContext) -> Any:
        """On Repeat production mark the picked cards; on Complete order report the counts, once
        failed cards, if any, are accepted."""
        order = _require_order(ctx)
        problems = self._problems(ctx, order.id, form)
        if problems:
            raise FormError(problems[0])
        if ctx.action != "repeat":
            counts = progress(ctx.session, order.id)
            if ctx.action == "complete" and not self._failed_accepted(form, counts):
                raise FormError(failed_question(counts))
            return {"produced": counts["produced"], "failed": counts["failed"]}
        repeat, misprints = self._marks(form)
        try:
            count = request_repeat(ctx.session, order.id, repeat, misprints)
        except CardflowError as error:
            raise FormError(str(error)) from None
        return {"repeat": count}

    @staticmethod
    def _marks(form: Any) -> tuple[list[int], dict[int, str]]:
        """The failed cards ticked for Repeat and the produced ones marked misprinted, with reasons."""
        repeat = _ids(form.getlist("repeat"), "repeat selection")
        misprinted = _ids(form.getlist("misprint"), "misprint selection")
        return repeat, {card_id: form.get(f"reason_{card_id}", "").strip() for card_id in misprinted}

    def _problems(self, ctx: WidgetContext, order_id: int, form: Any = None) -> list[str]:
        """What is wrong with the post (reads only): extract refuses it with these, and the page
        drawn again lists them at its top."""
        try:
            repeat, misprints = self._marks(ctx.form if form is None else form)
        except FormError as error:
            return [str(error)]
        if ctx.action != "repeat":
            return [self.TICKED_FOR_REPEAT] if repeat or misprints else []
        if any(len(reason) > MAX_REASON_LENGTH for reason in misprints.values()):
            return [f"A misprint reason can have at most {MAX_REASON_LENGTH} characters."]
        problem = repeat_problem(ctx.session, order_id, repeat, misprints)
        return [problem] if problem else []

    def _failed_accepted(self, form: Any, counts: dict[str, int]) -> bool:
        """Whether the post may complete the order as to its failed cards: none failed, or the
        operator ticked that these many may fail."""
        return not counts["failed"] or form.get(self.ACCEPT_FAILED) == str(counts["failed"])


def failed_question(counts: dict[str, int]) -> str:
    """What Complete order asks when cards failed."""
    return (f"{counts['failed']} of {counts['total']} cards failed. Complete the order anyway? "
            "Failed cards go back to requested.")
