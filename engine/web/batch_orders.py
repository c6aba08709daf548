"""BATCH ORDERS: start the processes the deployed definitions put on it, resume or discard open
orders, find finished ones, work through an order's (or any instance's) steps; start the processes
of the console's Quick search menu.

The order page shows whatever the instance needs now: the ready user task's form, a progress
view that polls while the engine works, the error it stopped on, or the summary once it ended.
After a post the engine gets a moment to reach the next step, so work that takes no time shows
no progress view.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user

from engine.db import read_only
from engine.forms.schema_form import FormDefinitionError, form_from_text
from engine.leases import InstanceBusy
from engine.runtime import InstanceView, NotFound, ReadyTask, RuntimeFailure
from engine.start_menus import StartEntry, start_entries, start_entry
from engine.web.audit.keyset import position
from engine.web.auth import require_order_access, role_required
from engine.web.context import services
from engine.web.order_lists import finished_orders, open_orders, read_search
from engine.web.task_page import order_options, render_task, step_url, submit_task
from tasks.card_life import instance_card_changes
from tasks.cards import CARD_NUMBER, MAX_NUMBER_LENGTH
from tasks.orders import discard_problem
from tasks.queries import card_counts, order_card_attempts, order_for_instance, progress
from tasks.store import Order

bp = Blueprint("batch_orders", __name__)

SUMMARY_PAGE_SIZE = 50
# How long a post waits for the engine to reach the next step before showing the progress view.
SETTLE_SECONDS = 1.5
operator_only = role_required("operator")


def _owned(instance_id: str) -> tuple[InstanceView, ReadyTask | None]:
    """The instance, which must exist and belong to the logged-in operator, and its ready user task."""
    try:
        view, task = services().runtime.current(instance_id)
    except NotFound:
        abort(404, "There is no such order; it may have been removed.")
    require_order_access(view.started_by)
    return view, task


def _owned_view(instance_id: str) -> InstanceView:
    """The instance, which must exist and belong to the logged-in operator."""
    return _owned(instance_id)[0]


def _order_state(instance_id: str) -> tuple[Order | None, dict | None]:
    """The order and its production counts (both None before the order is opened)."""
    with read_only(services().sessions) as session:
        order = order_for_instance(session, instance_id)
        if order is None:
            return None, None
        return order, progress(session, order.id)


def _settle(instance_id: str) -> None:
    """Give the engine a moment to reach the instance's next step (a user task or its end)."""
    services().runner.wait(instance_id, timeout=SETTLE_SECONDS)


@bp.route("/batch-orders")
@operator_only
def index():
    """The BATCH ORDERS page: the start button, the operator's open orders, finished orders."""
    return _index_page()


def _index_page(discarding: tuple[str, int | None, int] | None = None):
    """BATCH ORDERS; ``discarding`` (instance id, order number, cards) asks to confirm a discard."""
    search = read_search(request.args)
    views = services().runtime.open_instances(user=current_user.name)
    with read_only(services().sessions) as session:
        entries = start_entries(session, "batch-orders")
        batch = {entry.process_id for entry in entries}
        # Orders are the instances of the processes this page starts; any other open process of
        # the operator (a card's, a quick search's) is listed apart, to resume it.
        inbox = open_orders(session, [view for view in views if view.process_id in batch])
        others = [view for view in views if view.process_id not in batch]
        finished = None if search.problems else finished_orders(session, search, position(request.args))
    page = render_template("batch_orders.html", inbox=inbox, others=others, search=search, finished=finished,
                           discarding=discarding, entries=entries)
    return page, 400 if search.problems else 200


def _start(menu: str, process_id: str, back: str):
    """Start ``process_id`` if ``menu`` offers it, and go to its first step; 404 if it does not."""
    with read_only(services().sessions) as session:
        entry = start_entry(session, menu, process_id) if len(process_id) <= 200 else None
    if entry is None:
        abort(404, "No such process can be started here; it may have been removed from the menu.")
    try:
        instance_id = services().runtime.start(entry.process_id, current_user.name)
    except RuntimeFailure as error:
        flash(str(error), "error")
        return redirect(back, code=303)
    _settle(instance_id)
    return redirect(url_for("batch_orders.order", instance_id=instance_id), code=303)


@bp.route("/batch-orders/start/<process_id>", methods=("POST",))
@operator_only
def start(process_id: str):
    """Start a process of BATCH ORDERS (such as "Issue multiple temporary cards") and go to its
    first step."""
    return _start("batch-orders", process_id, url_for("batch_orders.index"))


@bp.route("/quick-search/<process_id>", methods=("POST",))
@operator_only
def quick_start(process_id: str):
    """Start a process of the Quick search > Temporary card menu and go to its first step."""
    return _start("quick-search", process_id, url_for("batch_orders.index"))


@bp.app_context_processor
def quick_search_menu() -> dict:
    """The Quick search > Temporary card entries, for the operator's navigation on every page."""

    def entries() -> list[StartEntry]:
        if not current_user.is_authenticated or current_user.role != "operator":
            return []
        with read_only(services().sessions) as session:
            return start_entries(session, "quick-search")

    return {"quick_search_entries": entries}


@bp.route("/orders/<instance_id>")
@operator_only
def order(instance_id: str):
    """The order's current step: a form, progress, its error, or its summary."""
    view, task = _owned(instance_id)
    if task is not None:
        return render_task(view, task)
    found, counts = _order_state(instance_id)
    shown = {"view": view, "order": found, "order_id": found.id if found else None, "counts": counts,
             "options": order_options(found)}
    if view.status in ("completed", "cancelled"):
        return _summary(shown)
    if view.status == "error":
        return render_template("order_error.html", **shown)
    return render_template("order_progress.html", **shown)


def _summary(shown: dict):
    """An ended order's summary: its counts and each card with every attempt, a keyset page of cards."""
    after = request.args.get("cards_after", "")
    after = after if len(after) <= MAX_NUMBER_LENGTH and CARD_NUMBER.fullmatch(after) else None
    cards, order_id = [], shown["order_id"]
    if order_id is not None:
        with read_only(services().sessions) as session:
            cards = order_card_attempts(session, order_id, after_number=after, limit=SUMMARY_PAGE_SIZE + 1)
            shown["counts"] = card_counts(session, [order_id])[order_id]
    else:  # a process without an order (a card's, a quick search's): the cards it changed
        with read_only(services().sessions) as session:
            shown["changes"] = instance_card_changes(session, shown["view"].id)
    next_after = cards[SUMMARY_PAGE_SIZE - 1].number if len(cards) > SUMMARY_PAGE_SIZE else None
    return render_template("order_summary.html", **shown, cards=cards[:SUMMARY_PAGE_SIZE], cards_after=after,
                           next_after=next_after)


@bp.route("/orders/<instance_id>/status")
@operator_only
def status(instance_id: str):
    """JSON for the progress view's poll: is the engine busy, what is it waiting on, the counts."""
    view = _owned_view(instance_id)
    _order, counts = _order_state(instance_id)
    return jsonify(busy=view.busy, status=view.status, waiting_on=view.waiting_on,
                   progress=counts or {"total": 0, "pending": 0, "produced": 0, "failed": 0},
                   error=view.error)


@bp.route("/orders/<instance_id>/tasks/<task_id>", methods=("POST",), endpoint="submit_task")
@operator_only
def submit_task_view(instance_id: str, task_id: str):
    """Complete the step with the posted form, or re-draw it with what was wrong (nothing changes);
    a button that does not complete the step stores what it asks and shows the step again."""
    view, task = _owned(instance_id)
    if task is None:
        flash("This step is no longer waiting for input; here is where the order stands now.", "error")
        return redirect(url_for("batch_orders.order", instance_id=instance_id), code=303)
    if task.task_id != task_id:
        return render_task(view, task, status=409,
                           notice="The page was out of date; nothing was changed. This is the current step.")
    try:
        submission = submit_task(task)
    except (RuntimeFailure, InstanceBusy) as error:
        return render_task(view, task, status=409, notice=f"{error} Nothing was changed.")
    if not submission.ok:
        return render_task(view, task, submission, status=400)
    if not submission.action.complete:
        return redirect(step_url(instance_id, submission), code=303)
    _settle(instance_id)
    return redirect(url_for("batch_orders.order", instance_id=instance_id), code=303)


@bp.route("/orders/<instance_id>/retry", methods=("POST",))
@operator_only
def retry(instance_id: str):
    """Run an order that stopped on an error again from its last saved step."""
    _owned_view(instance_id)
    try:
        services().runtime.retry(instance_id, current_user.name)
    except RuntimeFailure as error:
        flash(str(error), "error")
    else:
        _settle(instance_id)
    return redirect(url_for("batch_orders.order", instance_id=instance_id), code=303)


@bp.route("/orders/<instance_id>/cancel", methods=("POST",))
@operator_only
def cancel(instance_id: str):
    """Cancel an order that stopped on an error: its reservations are freed, nothing is produced."""
    _owned_view(instance_id)
    try:
        services().runtime.cancel(instance_id, current_user.name)
    except (RuntimeFailure, InstanceBusy) as error:
        flash(str(error), "error")
    else:
        flash("The order is cancelled; its cards are free for other orders.", "info")
    return redirect(url_for("batch_orders.order", instance_id=instance_id), code=303)


@bp.route("/orders/<instance_id>/discard", methods=("POST",))
@operator_only
def discard(instance_id: str):
    """Discard an open order that has produced nothing: after the operator confirms it on the
    page, the order is cancelled as its step's Cancel does (or, stopped on an error, as Cancel
    order does) and its cards are free again."""
    view, task = _owned(instance_id)
    with read_only(services().sessions) as session:
        problem = discard_problem(session, instance_id)
        found = order_for_instance(session, instance_id)
        cards = card_counts(session, [found.id])[found.id]["total"] if found else 0
    named = f"Order {found.id}" if found else "The order"
    if problem is None and view.status == "running" and task is None:
        problem = f"{named} is working; wait until it waits for you, then discard it."
    if problem is None and view.status not in ("running", "error"):
        problem = f"{named} has already ended."
    if problem is not None:
        flash(f"{problem} Nothing was changed.", "error")
        return redirect(url_for("batch_orders.index"), code=303)
    if request.form.get("confirmed") != "yes":
        return _index_page(discarding=(instance_id, found.id if found else None, cards))
    try:
        if view.status == "error":
            services().runtime.cancel(instance_id, current_user.name)
        else:
            _cancel_step(instance_id, task)
    except (RuntimeFailure, InstanceBusy) as error:
        flash(f"{error} Nothing was changed.", "error")
        return redirect(url_for("batch_orders.index"), code=303)
    _settle(instance_id)
    flash(f"{named} is discarded; its cards are free for other orders.", "success")
    return redirect(url_for("batch_orders.index"), code=303)


def _cancel_step(instance_id: str, task: ReadyTask) -> None:
    """Press the step's own Cancel: the process ends the order the way its definition says."""
    action = form_from_text(task.schema_text, task.ui_text).action("cancel")
    if action is None or action.validate:
        raise RuntimeFailure(f"The step \u201c{task.title}\u201d has no Cancel; open the order to end it.")
    services().runtime.complete_task(instance_id, task.task_id, {"action": "cancel"}, current_user.name)


@bp.errorhandler(FormDefinitionError)
def unusable_form(error: FormDefinitionError):
    """A form stored before today's checks that they refuse: say so plainly, change nothing."""
    message = (f"This step's form cannot be used: {error} Nothing was changed; ask an admin to deploy a "
               "corrected form.")
    return render_template("error.html", title="Form cannot be shown", message=message), 500
