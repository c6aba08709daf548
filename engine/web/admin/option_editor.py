"""An option set as a form of its known options (with their limits) and as its script text.

Both save the same way: the form's values are written into the current script text (comments
kept), then the text is validated and versioned exactly as ``cardflow deploy`` does.
"""

from __future__ import annotations

from typing import Any

from flask import abort, render_template, request
from flask_login import current_user

from engine.bootstrap import OPTION_FIELDS
from engine.db import read_only, unit_of_work
from engine.definitions import Problem
from engine.deployment import Source
from engine.option_scripts import with_values
from engine.versions import current_options
from engine.web.admin import admin_only, bp
from engine.web.admin.deploying import DeployResult, deploy_and_report
from engine.web.context import services

MAX_SCRIPT_CHARS = 64 * 1024


@bp.route("/options/<name>", methods=("GET", "POST"))
@admin_only
def options(name: str):
    """The options page: the generated form, the script text, Validate and Save."""
    fields = OPTION_FIELDS.get(name)
    if fields is None:
        abort(404, f"There is no option set {name}.")
    with read_only(services().sessions) as session:
        current = current_options(session, name)
        text, values = (current.source, current.values) if current else ("", {})
    result, errors = None, {}
    if request.method == "POST":
        action = request.form.get("action", "")
        if action.endswith("-text"):
            text = request.form.get("source", "")
            if len(text) > MAX_SCRIPT_CHARS:
                result = _refused(name, f"the option script is longer than {MAX_SCRIPT_CHARS} characters")
        else:
            posted, errors = _read_fields(fields, request.form)
            values = {**values, **posted}  # drawn again as the admin left them
            if errors:
                result = _refused(name, "some options have wrong values; see the form")
            else:
                text = with_values(text, values, name)
        if result is None:
            result = deploy_and_report([Source(name, text.encode("utf-8"), f"options/{name}")],
                                       current_user.name, check_only=not action.startswith("save"))
        if result.ok and not result.check_only:
            with unit_of_work(services().sessions) as session:
                current = current_options(session, name)
                values = current.values
    status = 400 if result is not None and not result.ok else 200
    return render_template("admin/options.html", name=name, fields=fields, values=values, text=text,
                           current=current, result=result, errors=errors), status


def _refused(name: str, reason: str) -> DeployResult:
    """A result refused before validation, shown like the deploy's own problems."""
    return DeployResult(True, problems=[Problem(f"options/{name}", None, reason)])


def _read_fields(fields, form) -> tuple[dict[str, Any], dict[str, str]]:
    """Typed values from the options form; a message per field that is not acceptable."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for field in fields:
        if field.kind == "boolean":
            values[field.name] = form.get(field.name) == "on"
        elif field.kind == "choices":
            picked = form.getlist(field.name)
            unknown = [item for item in picked if item not in field.choices]
            if unknown:
                errors[field.name] = f"{field.label}: choose from the listed values."
            values[field.name] = [choice for choice in field.choices if choice in picked]
        else:
            raw = form.get(field.name, "").strip()
            if not (raw.isascii() and raw.isdigit() and len(raw) < 10):
                errors[field.name] = f"{field.label}: enter a whole number."
                continue
            number = int(raw)
            if (field.minimum is not None and number < field.minimum) or \
                    (field.maximum is not None and number > field.maximum):
                errors[field.name] = f"{field.label} must be {field.minimum} to {field.maximum}."
            values[field.name] = number
    return values, errors
