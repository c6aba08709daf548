"""Processes, forms and option scripts: every version, its source, a diff, roll back, upload.

Deploying from the browser goes through the same validation as ``cardflow deploy``
(``engine.definitions.deploy_sources``): the problems an admin sees are the CLI's, file and line.
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from engine.bootstrap import OPTION_VALIDATORS
from engine.db import read_only, unit_of_work
from engine.definitions import FORM_NAME
from engine.deployment import Source
from engine.versions import KINDS, VersionError, current_version_number, get_version, list_versions, rollback
from engine.web.admin import admin_only, bp
from engine.web.admin.deploying import deploy_and_report, source_text
from engine.web.admin.side_by_side import side_by_side
from engine.web.context import services

KIND_TITLES = {"process": "Processes", "form": "Forms", "option": "Option scripts"}
MAX_UPLOAD_BYTES = 1024 * 1024
UPLOAD_TYPES = {".bpmn": ("application/xml", "text/xml", "application/octet-stream", ""),
                ".json": ("application/json", "text/plain", "application/octet-stream", "")}


def _kind(kind: str) -> str:
    """``kind`` from the URL, or 404."""
    if kind not in KINDS:
        abort(404, "There is no such kind of definition.")
    return kind


def version_arg(name: str = "version") -> int | None:
    """A version number from the query (ASCII digits only), None when absent; 404 when not a number."""
    raw = request.args.get(name, "")
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) < 7):
        abort(404, "There is no such version.")
    return int(raw)


@bp.route("/")
@admin_only
def index():
    """Every deployed process, form and option set with all its versions; the current one marked."""
    with read_only(services().sessions) as session:
        groups = {kind: _grouped(list_versions(session, kind)) for kind in KIND_TITLES}
    return render_template("admin/versions.html", groups=groups, titles=KIND_TITLES,
                           option_sets=sorted(OPTION_VALIDATORS))


def _grouped(infos):
    """Versions by name, keeping the listing's order (newest first within a name)."""
    grouped: dict[str, list] = {}
    for info in infos:
        grouped.setdefault(info.name, []).append(info)
    return grouped


@bp.route("/<kind>/<name>/source")
@admin_only
def source(kind: str, name: str):
    """One version's text (the current one unless ``?version=N``), with line numbers."""
    kind, version = _kind(kind), version_arg("version")
    with read_only(services().sessions) as session:
        row = get_version(session, kind, name, version)
        if row is None:
            abort(404, f"There is no {kind} {name}" + (f" version {version}." if version else "."))
        current = current_version_number(session, kind, name)
        versions = [info.version for info in list_versions(session, kind, name)]
    return render_template("admin/source.html", kind=kind, name=name, row=row, text=source_text(kind, row),
                           current=current, versions=versions)


@bp.route("/<kind>/<name>/diff")
@admin_only
def diff(kind: str, name: str):
    """Two versions side by side (``?a=1&b=2``; by default the previous and the newest)."""
    kind = _kind(kind)
    with read_only(services().sessions) as session:
        versions = [info.version for info in list_versions(session, kind, name)]
        if not versions:
            abort(404, f"There is no {kind} {name}.")
        b = version_arg("b") or versions[0]
        a = version_arg("a") or (versions[1] if len(versions) > 1 else versions[0])
        left, right = get_version(session, kind, name, a), get_version(session, kind, name, b)
        if left is None or right is None:
            abort(404, "There is no such version.")
        rows = side_by_side(source_text(kind, left), source_text(kind, right))
    return render_template("admin/diff.html", kind=kind, name=name, a=a, b=b, rows=rows, versions=versions)


@bp.route("/<kind>/<name>/rollback", methods=("POST",))
@admin_only
def roll_back(kind: str, name: str):
    """Make an earlier version current for new orders; running orders keep theirs."""
    kind = _kind(kind)
    raw = request.form.get("version", "")
    if not (raw.isascii() and raw.isdigit() and len(raw) < 7):
        flash("Choose the version to roll back to.", "error")
        return redirect(url_for("admin.index"), code=303)
    try:
        with unit_of_work(services().sessions) as session:
            rollback(session, kind, name, int(raw), current_user.name)
    except VersionError as error:
        flash(str(error), "error")
    else:
        flash(f"{name} version {raw} is now used by new orders; running orders keep their version.", "info")
    return redirect(url_for("admin.index") + f"#{kind}-{name}", code=303)


@bp.route("/upload", methods=("POST",))
@admin_only
def upload():
    """Validate or deploy an uploaded file: a .bpmn process, a .json form, or an option script."""
    upload_file = request.files.get("file")
    check_only = request.form.get("action") != "deploy"
    if upload_file is None or not upload_file.filename:
        flash("Choose a file to upload.", "error")
        return redirect(url_for("admin.index"), code=303)
    try:
        data = upload_file.read(MAX_UPLOAD_BYTES + 1)
    finally:
        upload_file.close()
    name, reason = _upload_name(upload_file.filename, upload_file.mimetype, data)
    if reason:
        flash(reason, "error")
        return redirect(url_for("admin.index"), code=303)
    result = deploy_and_report([Source(name, data, name)], current_user.name, check_only)
    return render_template("admin/deploy_result.html", result=result, back=url_for("admin.index"))


def _upload_name(client_name: str, mimetype: str, data: bytes) -> tuple[str, str | None]:
    """The name the upload is deployed under, or why it is refused.

    The client's path is never used: only its last part, and only when it is a name this product
    would give the file itself (a form file name, an option set, any name for a process).
    """
    if len(data) > MAX_UPLOAD_BYTES:
        return "", f"The file is larger than {MAX_UPLOAD_BYTES // 1024} KB; nothing was changed."
    base = client_name.replace("\\", "/").rsplit("/", 1)[-1]
    if base.endswith(".bpmn"):
        kind_ok, name = mimetype in UPLOAD_TYPES[".bpmn"], "upload.bpmn"
    elif base.endswith(".json"):
        kind_ok, name = mimetype in UPLOAD_TYPES[".json"], base
        if not FORM_NAME.fullmatch(base):
            return "", ("A form file is named <name>.schema.json or <name>.uischema.json (letters, digits, "
                        "_ and -); nothing was changed.")
    elif base in OPTION_VALIDATORS:
        kind_ok, name = mimetype in ("text/plain", "application/octet-stream", ""), base
    else:
        return "", ("Upload a process (.bpmn), a form (.schema.json, .uischema.json) or an option script "
                    f"named {', '.join(OPTION_VALIDATORS)}; nothing was changed.")
    if not kind_ok:
        return "", f"The file's content type {mimetype!r} does not match its name; nothing was changed."
    return name, None

