"""A process version drawn with bpmn-js: the diagram (viewer) and the modeler the admin edits it in.

Both pages read one stored version (``?version=N``, default the current one). The modeler posts
the XML it exports to the check and deploy endpoints of ``engine.web.admin.process_editor``.
"""

from __future__ import annotations

from flask import abort, render_template, request, url_for
from sqlalchemy import select

from engine.db import read_only
from engine.store import Definition
from engine.versions import current_form_names, current_version_number, get_version
from engine.web.admin import admin_only, bp
from engine.web.context import services


def _version_or_404(session, process_id: str) -> Definition:
    """The version the URL asks for (the current one without ``?version``), or a 404 naming it."""
    version = request.args.get("version", type=int)
    definition = get_version(session, "process", process_id, version)
    if definition is None:
        which = f"version {version}" if version is not None else "a current version"
        abort(404, description=f"There is no process {process_id} with {which}.")
    return definition


def _page(session, definition: Definition) -> dict:
    """What both pages show about the version: name, number, whether it is current, and links.

    ``diagram.html`` draws any dict of this shape, so another console can show a diagram with its
    own links (or none).
    """
    process_id, version = definition.process_id, definition.version
    numbers = session.scalars(select(Definition.version).where(Definition.process_id == process_id)
                              .order_by(Definition.version))
    return {
        "process_id": process_id,
        "name": definition.name,
        "version": version,
        "is_current": version == current_version_number(session, "process", process_id),
        "versions": [(number, url_for("admin.diagram", process_id=process_id, version=number))
                     for number in numbers],
        "modeler_url": url_for("admin.modeler", process_id=process_id, version=version),
        "xml_url": url_for("admin.process_xml", process_id=process_id, version=version),
    }


@bp.route("/processes/<process_id>/diagram")
@admin_only
def diagram(process_id: str):
    """A stored version of a process drawn as its BPMN diagram, read only."""
    with read_only(services().sessions) as session:
        definition = _version_or_404(session, process_id)
        page = _page(session, definition)
        data = {"xml": definition.bpmn_xml}
    return render_template("admin/diagram.html", page=page, data=data)


@bp.route("/processes/<process_id>/modeler")
@admin_only
def modeler(process_id: str):
    """The modeler loaded with a stored version; Validate and Deploy post what it exports."""
    with read_only(services().sessions) as session:
        definition = _version_or_404(session, process_id)
        page = _page(session, definition)
        data = {
            "xml": definition.bpmn_xml,
            "processId": process_id,
            "operators": sorted(services().registry.names()),
            "forms": current_form_names(session),
            "moddleUrl": url_for("static", filename="modeler/spiffworkflow.json"),
            "checkUrl": url_for("admin.process_check_json"),
            "deployUrl": url_for("admin.process_deploy_json"),
        }
    return render_template("admin/modeler.html", page=page, data=data)
