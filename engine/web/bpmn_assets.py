"""bpmn-js, the BPMN viewer and modeler of bpmn.io, served by the console itself (no CDN).

``make setup`` installs the pinned package into ``engine/web/bpmnjs/node_modules`` from its lock
file. Only an allow-list of its prebuilt files is served, to logged-in users, under a URL that
carries the installed version: the browser may keep them for a year (privately, as every page
here is behind the login), and an upgrade changes the URL. Templates link them with
``bpmn_asset("bpmn-modeler.production.min.js")``.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from flask import Blueprint, abort, send_file, url_for
from flask_login import login_required

bp = Blueprint("bpmn_assets", __name__, url_prefix="/bpmn-js")

PACKAGE = Path(__file__).parent / "bpmnjs" / "node_modules" / "bpmn-js"
ONE_YEAR = 365 * 24 * 3600
# path under the package's dist/ -> content type. The fonts keep their relative place: bpmn.css
# names them as ../font/bpmn.woff2.
FILES = {
    "bpmn-modeler.production.min.js": "text/javascript",
    "bpmn-navigated-viewer.production.min.js": "text/javascript",
    "assets/diagram-js.css": "text/css",
    "assets/bpmn-js.css": "text/css",
    "assets/bpmn-font/css/bpmn.css": "text/css",
    "assets/bpmn-font/font/bpmn.woff2": "font/woff2",
    "assets/bpmn-font/font/bpmn.woff": "font/woff",
    "assets/bpmn-font/font/bpmn.ttf": "font/ttf",
}


@cache
def installed_version() -> str:
    """The version of the installed bpmn-js; a missing install is a clear error for the admin."""
    try:
        return json.loads((PACKAGE / "package.json").read_text(encoding="utf-8"))["version"]
    except FileNotFoundError:
        raise RuntimeError(f"bpmn-js is not installed in {PACKAGE.parent}; run `make setup`.") from None


@bp.app_template_global()
def bpmn_asset(name: str) -> str:
    """The URL of one allowed bpmn-js file, for templates."""
    if name not in FILES:
        raise KeyError(f"{name} is not a served bpmn-js file; allowed: {', '.join(FILES)}")
    return url_for("bpmn_assets.asset", version=installed_version(), name=name)


@bp.route("/<version>/<path:name>")
@login_required
def asset(version: str, name: str):
    """One allowed file of the installed version, cacheable for a year (its URL names the version)."""
    if name not in FILES or version != installed_version():
        abort(404)
    response = send_file(PACKAGE / "dist" / name, mimetype=FILES[name], max_age=ONE_YEAR, conditional=True)
    response.cache_control.private = True
    response.cache_control.immutable = True
    return response
