"""Named widgets: form parts for data a plain form cannot hold (a paginated card picker, a review).

A form field names its widget in the UI schema ("ui:widget": "card_picker"); the composition root
registers the widgets the product publishes. A widget draws itself and, when its form is posted,
reads its part of the post and returns the small value that goes into the workflow data. On a
button that does not complete the step (an in-step action) it stores what the button asks and
may return a Redraw: the query arguments the step is drawn again with (another search).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from markupsafe import Markup

from engine.forms.schema_form import Action, Field, FormDefinitionError


class FormError(Exception):
    """Posted input a widget cannot accept; the message tells the operator what to change."""


@dataclass
class WidgetContext:
    """What a widget may use: the open session, the instance and its order, the request's input."""

    session: Any
    instance_id: str
    order: Any  # the order the instance works on, or None before it has one
    field: Field
    args: Mapping[str, str]  # query arguments (search filters, page numbers)
    form: Any = None  # the posted form (a multi-dict with getlist) when re-drawing after a post
    action: str | None = None  # the posted action, when reading a post
    task_data: Mapping[str, Any] | None = None  # the user task's workflow data (small values only)
    actions: tuple[Action, ...] = ()  # the in-step buttons this widget draws (the form names them)
    error: str | None = None  # what the widget's extract refused the post with, when re-drawing it
    post_url: Callable[..., str] | None = None  # post_url(**args): where a button posts to redraw with args


@dataclass(frozen=True)
class Redraw:
    """An in-step action's answer: draw the step again with these query arguments."""

    args: Mapping[str, str]


class Widget(Protocol):
    """A named widget: draws its part of the form and reads it back from a post."""

    def render(self, ctx: WidgetContext) -> Markup:
        """The widget's HTML, placed inside the task's form."""

    def extract(self, form: Any, ctx: WidgetContext) -> Any:
        """The value to store under the field's name (None for nothing); may raise FormError."""


class WidgetRegistry:
    """Widget name -> widget, filled once by the composition root."""

    def __init__(self) -> None:
        self._widgets: dict[str, Widget] = {}

    def register(self, name: str, widget: Widget) -> None:
        """Publish ``widget`` under ``name``."""
        self._widgets[name] = widget

    def get(self, name: str) -> Widget:
        """The widget called ``name``; an unknown name is a form definition error."""
        try:
            return self._widgets[name]
        except KeyError:
            raise FormDefinitionError(f'No widget named "{name}" is published.') from None

    def names(self) -> set[str]:
        """Every published widget name (deploy checks form files against these)."""
        return set(self._widgets)

    def __iter__(self) -> Iterator[str]:
        """Iterate over the published names."""
        return iter(self._widgets)
