"""The auditor's console under ``/audit/``: the audit trail, its exports, and every order's history.

One blueprint for the auditor user group; each page family lives in its own module and adds its
routes to ``bp``. Every route is a GET for role auditor only: this console reads, never writes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from flask import Blueprint

from engine.web.auth import role_required

bp = Blueprint("audit", __name__, url_prefix="/audit")
auditor_only = role_required("auditor")


@bp.app_template_filter("utc")
def utc(moment: datetime | None, seconds: bool = True) -> str:
    """A stored time as UTC text (SQLite gives times back without their zone, PostgreSQL in the
    connection's zone); an empty string for no time."""
    if moment is None:
        return ""
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


@bp.app_template_filter("pretty_json")
def pretty_json(value: object) -> str:
    """A stored JSON value laid out for reading (the template escapes it)."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


# The page modules register their routes on ``bp`` when imported.
from engine.web.audit import exports, orders, trail  # noqa: E402,F401
