"""The admin console under ``/admin/``: processes, forms and option scripts, the modeler, users,
stations.

One blueprint for the admin user group; each page family lives in its own module and adds its
routes to ``bp``. Every route is for role admin only.
"""

from __future__ import annotations

from flask import Blueprint, current_app

from engine.web.auth import role_required

bp = Blueprint("admin", __name__, url_prefix="/admin")
admin_only = role_required("admin")

# The admin menu: (endpoint, label); an entry shows once its page module is registered.
ADMIN_MENU = (("admin.index", "Processes, forms and options"), ("admin.users", "Users"),
              ("admin.stations", "Stations"))


@bp.context_processor
def _admin_menu() -> dict:
    """The admin pages' own menu, for admin/nav.html."""
    return {"admin_menu": [(endpoint, label) for endpoint, label in ADMIN_MENU
                           if endpoint in current_app.view_functions]}


# The page modules register their routes on ``bp`` when imported.
from engine.web.admin import (  # noqa: E402,F401
    form_editor,
    modeler,
    option_editor,
    process_editor,
    stations,
    users,
    versions,
)
