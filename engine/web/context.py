"""Where a request finds the product: the services and widgets the app factory stored on the app."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import current_app

from engine.forms.widgets import WidgetRegistry

if TYPE_CHECKING:
    from engine.bootstrap import Services

SERVICES_KEY = "cardflow"
WIDGETS_KEY = "cardflow_widgets"


def services() -> Services:
    """The services of the running app (database sessions, runtime, runner, settings)."""
    return current_app.extensions[SERVICES_KEY]


def widgets() -> WidgetRegistry:
    """The widgets that forms may name."""
    return current_app.extensions[WIDGETS_KEY]
