"""BATCH ORDERS: start "Issue multiple temporary cards", resume open orders, work through their steps.

The order page shows whatever the instance needs now: the ready user task's form, a progress
view that polls while the engine works, the error it stopped on, or the summary once it ended.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user

from engine.db import read_only
from engine.forms.schema_form import FormDefinitionError
from engine.leases import InstanceBusy
from engine.runtime import InstanceView, NotFound, ReadyTask, RuntimeFailure
from engine.web.auth import require_order_access, role_required
from engine.web.context import services
from engine.web.paging import page_number
from engine.web.task_page import render_task, submit_task
from tasks.queries import order_cards, order_for_instance, progress

bp = Blueprint("batch_orders", __name__)

PROCESS_ID = "TempCardsBoProcIssueMultiple"
SUMMARY_PAGE_SIZE = 100
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


def _order_state(instance_id: str) -> tuple[int | None, str | None, dict | None]:
    """The order's id, status and production counts (all None before the order is opened)."""
    with read_only(services().sessions) as session:
        order = order_for_instance(session, instance_id)
        if order is None:
            return None, None, None
        return order.id, order.status, progress(session, order.id)


@bp.route("/batch-orders")
@operator_only
def index():
    """The BATCH ORDERS page: the start button and the operator's open orders."""
    inbox = services().runtime.open_instances(user=current_user.name)
    return render_template("batch_orders.html", inbox=inbox)


@bp.route("/batch-orders/issue-multiple", methods=("POST",))
@operator_only
def start():
    """Start "Issue multiple temporary cards" and go to its first step."""
    try:
        instance_id = services().runtime.start(PROCESS_ID, current_user.name)
    except RuntimeFailure as error:
        flash(str(error), "error")
        return redirect(url_for("batch_orders.index"), code=303)
    return redirect(url_for("batch_orders.order", instance_id=instance_id), code=303)


@bp.route("/orders/<instance_id>")
@operator_only
def order(instance_id: str):
    """The order's current step: a form, progress, its error, or its summary."""
    view, task = _owned(instance_id)
    if task is not None:
        return render_task(view, task)
    order_id, order_status, counts = _order_state(instance_id)
    if view.status in ("completed", "cancelled"):
        with read_only(services().sessions) as session:
            cards = order_cards(session, order_id, page=page_number(request.args),
                                per_page=SUMMARY_PAGE_SIZE) if order_id else None
        return render_template("order_summary.html", view=view, order_id=order_id,
                               order_status=order_status, counts=counts, cards=cards)
    if view.status == "error":
        return render_template("order_error.html", view=view, order_id=order_id, counts=counts)
    return render_template("order_progress.html", view=view, order_id=order_id, counts=counts)


@bp.route("/orders/<instance_id>/status")
@operator_only
def status(instance_id: str):
    """JSON for the progress view's poll: is the engine busy, what is it waiting on, the counts."""
    view = _owned_view(instance_id)
    _order_id, _order_status, counts = _order_state(instance_id)
    return jsonify(busy=view.busy, status=view.status, waiting_on=view.waiting_on,
                   progress=counts or {"total": 0, "pending": 0, "produced": 0, "failed": 0},
                   error=view.error)


@bp.route("/orders/<instance_id>/tasks/<task_id>", methods=("POST",), endpoint="submit_task")
@operator_only
def submit_task_view(instance_id: str, task_id: str):
    """Complete the step with the posted form, or re-draw it with what was wrong (nothing changes)."""
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


@bp.errorhandler(FormDefinitionError)
def unusable_form(error: FormDefinitionError):
    """A form stored before today's checks that they refuse: say so plainly, change nothing."""
    message = (f"This step's form cannot be used: {error} Nothing was changed; ask an admin to deploy a "
               "corrected form.")
    return render_template("error.html", title="Form cannot be shown", message=message), 500
