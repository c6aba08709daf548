"""The widgets of the card processes that deal with holders: ``holder_picker`` (search a holder by
name or identifier and pick one), ``pin_letter`` (print the card's PIN letter once) and
``held_card`` (the card the process works on, with its holder).

The card is always the one the instance holds (tasks.card_holds), never one a post names; a
posted holder is only a holder id, checked against the holders table. Widgets read here; the
service tasks that follow change the card, in their own transaction.
"""

from __future__ import annotations

from typing import Any

from flask import render_template, url_for
from markupsafe import Markup
from sqlalchemy import select

from engine.forms.widgets import FormError, WidgetContext, WidgetRegistry
from tasks.card_assignment import encoded, open_assignment, sealed_pin_of
from tasks.card_holds import held_card
from tasks.cardsdk.records import CustodyRelease
from tasks.errors import CardflowError
from tasks.holders import HOLDER_KEY, find_holders, holder_key, read_holder_id
from tasks.store import Holder

HOLDER_PAGE_SIZE = 20
MAX_TYPED = 200


def register_holder_widgets(registry: WidgetRegistry) -> None:
    """Publish the holder widgets under the names the form files use."""
    registry.register("holder_picker", HolderPicker())
    registry.register("pin_letter", PinLetter())
    registry.register("held_card", HeldCard())


def _without_card(render):
    """Draw a card widget, or say plainly that the process holds no card (it was not started on
    one), instead of failing the whole page."""

    def draw(self, ctx: WidgetContext) -> Markup:
        try:
            return render(self, ctx)
        except FormError as error:
            return Markup('<p class="notice error" role="alert">{}</p>').format(str(error))

    return draw


def _card(ctx: WidgetContext) -> Any:
    """The card the instance holds; FormError when it holds none (it was not started on a card)."""
    try:
        return held_card(ctx.session, ctx.instance_id, lock=False)
    except CardflowError as error:
        raise FormError(str(error)) from None


class HolderPicker:
    """Search holders (name start or identifier), page through them, pick one active holder."""

    @_without_card
    def render(self, ctx: WidgetContext) -> Markup:
        """The card, what is wrong (the post's problem, or the assignment's refusal), the search
        (by GET, in the task-query form), the holders with a radio button each, and Next holders."""
        card = _card(ctx)
        typed = ctx.args.get("holder_q", "").strip()[:MAX_TYPED]
        after = None
        if HOLDER_KEY.fullmatch(ctx.args.get("holder_after", "")):
            found = ctx.session.get(Holder, int(ctx.args["holder_after"]))
            after = holder_key(found) if found else None
        holders = find_holders(ctx.session, typed, after=after, limit=HOLDER_PAGE_SIZE + 1)
        next_after = holders[HOLDER_PAGE_SIZE - 1].id if len(holders) > HOLDER_PAGE_SIZE else None
        problem = None
        if ctx.form is not None and ctx.action:
            problem = self._problem(ctx.session, ctx.form.get("holder", ""))
        refused = (ctx.task_data or {}).get("assignment")
        if problem is None and isinstance(refused, dict) and not refused.get("ok") and ctx.form is None:
            problem = str(refused.get("error"))
        chosen = ctx.form.get("holder", "") if ctx.form is not None else ""
        next_url = url_for("batch_orders.order", instance_id=ctx.instance_id, holder_q=typed,
                           holder_after=next_after) if next_after else None
        return Markup(render_template("widgets/holder_picker.html", field=ctx.field, card=card, typed=typed,
                                      holders=holders[:HOLDER_PAGE_SIZE], next_url=next_url, problem=problem,
                                      chosen=chosen, paged=after is not None,
                                      first_url=url_for("batch_orders.order", instance_id=ctx.instance_id,
                                                        holder_q=typed)))

    def extract(self, form: Any, ctx: WidgetContext) -> Any:
        """The picked holder's id, if that holder exists and is active."""
        problem = self._problem(ctx.session, form.get("holder", ""))
        if problem:
            raise FormError(problem)
        return int(form.get("holder"))

    @staticmethod
    def _problem(session, value: str) -> str | None:
        """What is wrong with the posted holder (reads only), or None."""
        if not value:
            return "Select the holder who gets the card (search by name or identifier)."
        try:
            holder = session.get(Holder, read_holder_id(value))
        except CardflowError as error:
            return str(error)
        if holder is None:
            return "The chosen holder is not a holder of this list; search and select the holder again."
        if holder.state != "active":
            return f"{holder.name} ({holder.identifier}) is inactive; only an active holder can get a card."
        return None


class PinLetter:
    """The PIN letter of the card just assigned: printed once (a PDF opened in a new tab), then
    only said to be printed. Next needs the letter printed; Cancel before printing undoes the
    assignment (the process's own step)."""

    @_without_card
    def render(self, ctx: WidgetContext) -> Markup:
        """Card, holder, and the Print PIN letter button (or when it was printed, and by whom)."""
        card = _card(ctx)
        holder = ctx.session.get(Holder, card.holder_id) if card.holder_id else None
        printed = None
        if encoded(ctx.session, card.id) and sealed_pin_of(ctx.session, card.id) is None:
            printed = ctx.session.scalar(select(CustodyRelease).where(CustodyRelease.card_id == card.id)
                                         .order_by(CustodyRelease.id.desc()).limit(1))
        problem = self._problem(ctx) if ctx.form is not None and ctx.action == "next" else None
        return Markup(render_template(
            "widgets/pin_letter.html", card=card, holder=holder, encoded=encoded(ctx.session, card.id),
            printed=printed, problem=problem,
            letter_url=url_for("pin_letters.print_letter", instance_id=ctx.instance_id)))

    def extract(self, form: Any, ctx: WidgetContext) -> Any:
        """On Next: the letter must have been printed (or the card carries no PIN)."""
        problem = self._problem(ctx)
        if problem:
            raise FormError(problem)
        return {"printed": True}

    @staticmethod
    def _problem(ctx: WidgetContext) -> str | None:
        card = _card(ctx)
        if encoded(ctx.session, card.id) and sealed_pin_of(ctx.session, card.id) is not None:
            return ("Print the PIN letter first (Print PIN letter), then click Next; or click Cancel to undo "
                    "the assignment.")
        return None


class HeldCard:
    """The card the process works on: number, state, valid until, and its holder."""

    @_without_card
    def render(self, ctx: WidgetContext) -> Markup:
        """The card, its state and validity, its holder and since when."""
        card = _card(ctx)
        holder = ctx.session.get(Holder, card.holder_id) if card.holder_id else None
        assignment = open_assignment(ctx.session, card.id)
        return Markup(render_template("widgets/held_card.html", card=card, holder=holder,
                                      assignment=assignment))

    def extract(self, form: Any, ctx: WidgetContext) -> Any:
        """Nothing to read (the card comes from the instance's hold), but the card must be there."""
        _card(ctx)
        return None
