"""The admin console under ``/admin/``: processes, forms and option scripts, the modeler, users.

One blueprint for the admin user group; each page family lives in its own module and adds its
routes to ``bp``. Every route is for role admin only.
"""

from __future__ import annotations

from flask import Blueprint

from engine.web.auth import role_required

bp = Blueprint("admin", __name__, url_prefix="/admin")
admin_only = role_required("admin")

# The page modules register their routes on ``bp`` when imported.
from engine.web.admin import versions  # noqa: E402,F401
