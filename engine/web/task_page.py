"""A user task on screen: draw its form with its widgets; read a post and complete the task.

A post either passes every check (action, schema, widgets) and completes the task, or changes
nothing: what widgets wrote during the checks is rolled back with the unit of work. A button that
does not complete the step (an in-step action, such as keeping a selection across pages) commits
what the widgets stored and leaves the task waiting; the step is then drawn again (step_url).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import render_template, request, url_for
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup

from engine.bootstrap import OPTION_FIELDS
from engine.db import read_only, unit_of_work
from engine.forms.schema_form import Action, Field, SchemaForm, form_from_text, render_form
from engine.forms.validation import Submission, read_submission
from engine.forms.widgets import WidgetContext
from engine.runtime import InstanceView, ReadyTask
from engine.web.context import services, widgets
from tasks.queries import order_for_instance


class _Rejected(Exception):
    """Raised inside the unit of work so that whatever the widgets staged is rolled back."""


def render_task(view: InstanceView, task: ReadyTask, submission: Submission | None = None,
                status: int = 200, notice: str | None = None) -> tuple[str, int]:
    """The task's page: its form with values and errors from ``submission`` when re-drawn."""
    form = form_from_text(task.schema_text, task.ui_text)
    with read_only(services().sessions) as session:
        order = order_for_instance(session, task.instance_id)
        posted = request.form if submission is not None else None
        action = submission.action.name if submission and submission.action else None
        errors = submission.errors if submission else {}
        markup = {item.name: _widget_markup(form, item, session, order, task, posted, action,
                                            errors.get(item.name))
                  for item in form.widget_fields()}
        html = render_form(
            form,
            # The search filter travels in the post's URL, so "Select all matching" means this search.
            action_url=_post_url(task, request.args),
            csrf_token=generate_csrf(),
            values=submission.values if submission else {},
            errors=submission.errors if submission else {},
            form_errors=_top_errors(form, submission) + _process_notice(task, submission)
            + ([notice] if notice else []),
            widgets=markup,
        )
        order_id = order.id if order else None
    page = render_template("order_task.html", view=view, task=task, form_html=html, order_id=order_id,
                           order=order, options=order_options(order),
                           query_url=url_for("batch_orders.order", instance_id=task.instance_id))
    return page, status


def _process_notice(task: ReadyTask, submission: Submission | None) -> list[str]:
    """What the process says at the top of the step it comes back to: its data's "notice" (such
    as why a service step refused the last input), until the step is posted again."""
    notice = task.data.get("notice")
    return [notice[:500]] if submission is None and isinstance(notice, str) and notice.strip() else []


def _top_errors(form: SchemaForm, submission: Submission | None) -> list[str]:
    """What the form lists at its top: the post's own problems, and those of plain fields (a
    widget says its own at its top), so a long step's errors are seen where the page opens."""
    if submission is None:
        return []
    plain = [item.name for item in form.fields if item.kind != "widget"]
    return submission.form_errors + [submission.errors[name] for name in plain if name in submission.errors]


def order_options(order: Any) -> list[tuple[str, str]]:
    """The options ``order`` runs with (its snapshot), as (label, value) in the admin's order of
    them; none before the order is opened."""
    if order is None:
        return []
    fields = OPTION_FIELDS.get(order.options_name, ())
    labels = {item.name: item.label for item in fields}
    names = [item.name for item in fields if item.name in order.options]
    names += sorted(name for name in order.options if name not in labels)
    return [(labels.get(name, name), _option_text(order.options[name])) for name in names]


def _option_text(value: Any) -> str:
    """An option's value as the operator reads it."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) or "none"
    return str(value)


def submit_task(task: ReadyTask) -> Submission:
    """Check the post against the task's form; when it passes, complete the task in the engine.

    Returns the submission; the caller re-draws the form when ``submission.ok`` is False.
    """
    form = form_from_text(task.schema_text, task.ui_text)
    submission: Submission | None = None
    try:
        with unit_of_work(services().sessions) as session:
            order = order_for_instance(session, task.instance_id)

            def extract(item: Field, action: Action) -> Any:
                ctx = _context(form, item, session, order, task, request.form, action.name)
                return widgets().get(item.widget).extract(request.form, ctx)

            submission = read_submission(form, request.form, extract)
            if not submission.ok:
                raise _Rejected
    except _Rejected:
        return submission
    if submission.action.complete:
        services().runtime.complete_task(task.instance_id, task.task_id, submission.data, current_user.name)
    return submission


def step_url(instance_id: str, submission: Submission) -> str:
    """Where an in-step action leads: the step drawn again, with the query arguments a widget asked
    for (another search) or else those of the post (the page the button was on, or went to)."""
    args = submission.redraw if submission.redraw is not None else request.args
    return url_for("batch_orders.order", **{**_query(args), "instance_id": instance_id})


def _query(args: Mapping[str, str]) -> dict[str, str]:
    """Query arguments to put in a URL; names with a leading underscore would be url_for's own
    options (_external, _scheme, _anchor), never a widget's."""
    return {name: value for name, value in args.items() if not name.startswith("_")}


def _post_url(task: ReadyTask, args: Mapping[str, str]) -> str:
    """The URL the task's form posts to, with ``args`` (the search and the page it is drawn for)."""
    return url_for("batch_orders.submit_task", **{**_query(args), "instance_id": task.instance_id,
                                                  "task_id": task.task_id})


def _widget_markup(form: SchemaForm, item: Field, session, order, task: ReadyTask, posted,
                   action: str | None, error: str | None) -> Markup:
    """One widget's HTML for this request, with what its extract refused the post with."""
    ctx = _context(form, item, session, order, task, posted, action, error)
    return widgets().get(item.widget).render(ctx)


def _context(form: SchemaForm, item: Field, session, order, task: ReadyTask, posted,
             action: str | None, error: str | None = None) -> WidgetContext:
    """What a widget sees of this request, and the in-step buttons it draws, which post to the
    task with the query arguments they are given."""
    return WidgetContext(session=session, instance_id=task.instance_id, order=order, field=item,
                         args=request.args, form=posted, action=action, task_data=task.data,
                         actions=form.field_actions(item.name), error=error,
                         post_url=lambda **args: _post_url(task, args))
