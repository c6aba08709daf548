"""A process's BPMN as text: the raw XML editor (the modeler's fallback) and the Validate and
Deploy endpoints both editors post to."""

from __future__ import annotations

import re

from flask import abort, jsonify, render_template, request
from flask_login import current_user

from engine.db import read_only, unit_of_work
from engine.definitions import DeployError
from engine.deployment import Source, process_check
from engine.versions import current_definition, get_version
from engine.web.admin import admin_only, bp
from engine.web.admin.deploying import DeployResult, deploy_and_report
from engine.web.admin.versions import version_arg
from engine.web.context import services, widgets

PROCESS_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,199}")
MAX_BPMN_CHARS = 2 * 1024 * 1024


def _posted_source() -> Source:
    """The posted BPMN text as a deployable source, named as the CLI names the file."""
    text = request.form.get("bpmn", "")
    if len(text) > MAX_BPMN_CHARS:
        abort(413)
    process_id = request.form.get("process_id", "")
    name = f"{process_id}.bpmn" if PROCESS_ID.fullmatch(process_id) else "editor.bpmn"
    return Source(name, text.encode("utf-8"), f"processes/{name}")


def _check(source: Source) -> tuple[DeployResult, str | None, int | None]:
    """Validate as ``cardflow deploy --check`` does; also the current version it equals, if any."""
    try:
        with unit_of_work(services().sessions) as session:
            validated, same = process_check(session, source, services().registry.names(), widgets().names())
    except DeployError as error:
        return DeployResult(True, problems=error.problems), None, None
    note = f" (the same as the current version v{same})" if same else ""
    return DeployResult(True, [f"{validated.process_id} valid{note}"]), validated.process_id, same


def _deploy(source: Source) -> tuple[DeployResult, str | None, int | None]:
    """Deploy as ``cardflow deploy`` does; the process id and its current version after."""
    result = deploy_and_report([source], current_user.name, check_only=False)
    if not result.ok:
        return result, None, None
    process_id = result.lines[-1].split(" ", 1)[0]
    with unit_of_work(services().sessions) as session:
        return result, process_id, current_definition(session, process_id).version


def _json_result(result: DeployResult, process_id: str | None, version: int | None) -> dict:
    """The editors' view of a result: problems, and whether it is (or made) a new version."""
    body = result.as_json()
    body.update(process_id=process_id, version=version, created=not result.check_only and result.changed)
    if not result.ok:
        body["message"] = f"{len(result.problems)} problem(s) found; nothing was changed."
    elif result.check_only:
        body["changed"] = version is None
        body["message"] = ("Valid; Deploy makes a new version." if version is None else
                           f"Valid. Nothing new to deploy: the engine spec is the same as version {version}.")
    elif result.changed:
        body["message"] = (f"Deployed {process_id} version {version}. New orders use it; "
                           "running orders keep theirs.")
    else:
        body["message"] = f"Nothing new to deploy: the engine spec is the same as version {version}."
    return body


@bp.route("/processes/check", methods=("POST",))
@admin_only
def process_check_json():
    """Validate posted BPMN: every problem with file, line and reason, as ``cardflow deploy --check``."""
    return jsonify(_json_result(*_check(_posted_source())))


@bp.route("/processes/deploy", methods=("POST",))
@admin_only
def process_deploy_json():
    """Deploy posted BPMN as a new immutable version (or say there is nothing new)."""
    return jsonify(_json_result(*_deploy(_posted_source())))


@bp.route("/processes/<process_id>/xml", methods=("GET", "POST"))
@admin_only
def process_xml(process_id: str):
    """The raw XML editor: a version's BPMN as text, with Validate and Deploy."""
    result = None
    if request.method == "POST":
        source = _posted_source()
        text = source.data.decode("utf-8")
        result = (_deploy if request.form.get("action") == "deploy" else _check)(source)[0]
        status = 200 if result.ok else 400
    else:
        with read_only(services().sessions) as session:
            row = get_version(session, "process", process_id, version_arg())
            if row is None:
                abort(404, f"There is no process {process_id} in that version.")
            text = row.bpmn_xml
        status = 200
    return render_template("admin/process_xml.html", process_id=process_id, text=text, result=result), status
