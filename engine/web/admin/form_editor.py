"""A form (JSON Schema + UI schema) edited with a live preview drawn by the operator's renderer.

Validate refuses what the renderer or the engine could not use; Deploy stores both files as new
versions, and every current process that binds them gets a new version bound to the new form.
"""

from __future__ import annotations

import json
import re

from flask import abort, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from markupsafe import Markup

from engine.db import read_only
from engine.definitions import Problem
from engine.deployment import Source
from engine.forms.schema_form import FormDefinitionError, check_form, render_form
from engine.versions import get_version
from engine.web.admin import admin_only, bp
from engine.web.admin.deploying import DeployResult, deploy_and_report
from engine.web.context import services, widgets

STEM = re.compile(r"[A-Za-z0-9_-]{1,150}")
MAX_FORM_CHARS = 256 * 1024
NEW_SCHEMA = '{\n  "type": "object",\n  "title": "New step",\n  "properties": {}\n}\n'
NEW_UI_SCHEMA = '{\n  "ui:actions": [\n    {"name": "next", "label": "Next"},\n' \
                '    {"name": "cancel", "label": "Cancel", "validate": false}\n  ]\n}\n'


def _stem(stem: str) -> str:
    if not STEM.fullmatch(stem):
        abort(404, "A form is named with letters, digits, _ and -.")
    return stem


def _posted() -> tuple[str, str]:
    """The posted schema and UI schema texts (a form larger than the limit is refused whole)."""
    schema, ui = request.form.get("schema", ""), request.form.get("uischema", "")
    if len(schema) > MAX_FORM_CHARS or len(ui) > MAX_FORM_CHARS:
        abort(413)
    return schema, ui


def _renderer_problems(stem: str, schema_text: str, ui_text: str) -> list[Problem]:
    """What the operator's renderer could not draw, with the file to blame."""
    try:
        schema, ui = json.loads(schema_text), json.loads(ui_text)
    except json.JSONDecodeError:
        return []  # the file checks report bad JSON with its position
    try:
        check_form(schema, ui, widgets().names())
    except FormDefinitionError as error:
        return [Problem(f"forms/{stem}.schema.json", None, str(error))]
    return []


def preview_markup(schema_text: str, ui_text: str) -> Markup:
    """The form as the operator will see it, with named widgets as labelled placeholders."""
    try:
        form = check_form(json.loads(schema_text), json.loads(ui_text), widgets().names())
    except (json.JSONDecodeError, FormDefinitionError, RecursionError) as error:
        return Markup('<p class="error">No preview: {}</p>').format(error)
    placeholder = Markup('<div class="widget-placeholder">{} (drawn with live data on the order page)</div>')
    placeholders = {item.name: placeholder.format(item.widget) for item in form.widget_fields()}
    html = render_form(form, action_url=url_for("admin.index"), csrf_token="", values={}, errors={},
                       widgets=placeholders)
    return Markup('<fieldset disabled class="preview-frame">{}</fieldset>').format(html)


@bp.route("/forms/new", methods=("GET", "POST"))
@admin_only
def form_new():
    """Start a new form: its name, then the editor with a minimal schema."""
    error = None
    if request.method == "POST":
        stem = request.form.get("name", "").strip()
        if STEM.fullmatch(stem):
            return redirect(url_for("admin.form_edit", name=stem), code=303)
        error = "Name the form with letters, digits, _ and - (at most 150)."
    return render_template("admin/form_new.html", error=error), 400 if error else 200


@bp.route("/forms/<name>", methods=("GET", "POST"))
@admin_only
def form_edit(name: str):
    """Edit the pair ``name.schema.json`` + ``name.uischema.json``: preview, Validate, Deploy."""
    stem = _stem(name)
    result = None
    if request.method == "POST":
        schema_text, ui_text = _posted()
        sources = [Source(f"{stem}.schema.json", schema_text.encode("utf-8"), f"forms/{stem}.schema.json"),
                   Source(f"{stem}.uischema.json", ui_text.encode("utf-8"), f"forms/{stem}.uischema.json")]
        problems = _renderer_problems(stem, schema_text, ui_text)
        deploy = request.form.get("action") == "deploy"
        if problems:
            result = DeployResult(not deploy, problems=problems)
        else:
            result = deploy_and_report(sources, current_user.name, check_only=not deploy)
    else:
        with read_only(services().sessions) as session:
            schema_row = get_version(session, "form", f"{stem}.schema.json")
            ui_row = get_version(session, "form", f"{stem}.uischema.json")
        schema_text = schema_row.body if schema_row else NEW_SCHEMA
        ui_text = ui_row.body if ui_row else NEW_UI_SCHEMA
    status = 400 if result is not None and not result.ok else 200
    return render_template("admin/form_edit.html", stem=stem, schema=schema_text, uischema=ui_text,
                           result=result, preview=preview_markup(schema_text, ui_text)), status


@bp.route("/forms/preview", methods=("POST",))
@admin_only
def form_preview():
    """The live preview's HTML for the posted texts (the editor's script asks as the admin types)."""
    schema_text, ui_text = _posted()
    return jsonify(html=str(preview_markup(schema_text, ui_text)))


