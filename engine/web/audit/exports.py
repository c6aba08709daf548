"""The filtered audit trail as a CSV or JSON download, streamed as it is read.

The stream reads in keyset batches with a short transaction each (``engine.audit_export``), so
a million entries leave the server without being held in memory or holding a lock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from flask import Response, request, stream_with_context

from engine.audit_export import stream_csv, stream_json
from engine.web.audit import auditor_only, bp
from engine.web.audit.trail import render_trail
from engine.web.audit.trail_form import read_form
from engine.web.context import services

Stream = Callable[..., Iterator[str]]


def _download(stream: Stream, mimetype: str, filename: str):
    """The trail under the query's filters as an attachment, or the trail page with its errors."""
    form = read_form(request.args)
    if form.filters is None:
        return render_trail(form)
    response = Response(stream_with_context(stream(services().sessions, form.filters)), mimetype=mimetype)
    # A fixed name: nothing the user typed reaches the header.
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/export.csv")
@auditor_only
def export_csv():
    """The filtered trail as CSV: a header line, then one line per entry, oldest first."""
    return _download(stream_csv, "text/csv", "audit-trail.csv")


@bp.route("/export.json")
@auditor_only
def export_json():
    """The filtered trail as one JSON array, oldest first."""
    return _download(stream_json, "application/json", "audit-trail.json")
