"""A user task's form: a JSON Schema plus UI hints, loaded into fields and actions, rendered to HTML.

The UI schema names the field order ("ui:order"), each field's widget, title and help, and the
form's buttons ("ui:actions"). A button marked ``"complete": false`` does not complete the step:
the widgets act on it (a selection kept across pages) and the step is drawn again; one that also
names a widget field (``"field"``) is drawn by that widget, next to what it acts on. Fields whose
widget is not a built-in one are drawn by a named widget of the registry (data the form itself
cannot hold, such as a paginated card picker).
Everything is rendered with autoescape on: form files are admin-authored text. A form file is
read completely (size, UTF-8, JSON, nesting, a safe schema) by read_form_file, at deploy and in
the admin's form editor; load_form checks the schema's safety again, for forms stored before.
A page loads its form with form_from_text, checked once per form text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from markupsafe import Markup

from engine.forms.schema_safety import MAX_DEPTH, depth_problem, schema_problem

MAX_FORM_BYTES = 256 * 1024
# Checked forms kept for the pages: every form of a few versions of each process.
CHECKED_FORMS = 64
BUILTIN_WIDGETS = frozenset({"text", "textarea", "select", "radio", "checkbox"})

_TEMPLATES = Environment(
    loader=PackageLoader("engine.forms", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    # Package files change only with the product: no stat of every template on every page.
    auto_reload=False,
)


def form_templates() -> Environment:
    """The templates forms are drawn with (a server compiles them before it serves)."""
    return _TEMPLATES


class FormDefinitionError(ValueError):
    """A form file is unusable; the message names the file's problem (shown to admins at deploy)."""


@dataclass(frozen=True)
class Action:
    """A button of the form: ``name`` is posted as ``action``, ``label`` is what the operator reads."""

    name: str
    label: str
    validate: bool = True
    confirm: str | None = None
    complete: bool = True  # False: an in-step action, the step waits on
    field_name: str | None = None  # the widget field that draws the button, instead of the form's bar

    @property
    def in_bar(self) -> bool:
        """Whether the form draws this button in its bar of buttons."""
        return self.field_name is None


@dataclass(frozen=True)
class Field:
    """One top-level property of the schema, with what the UI schema says about it."""

    name: str
    schema: Mapping[str, Any]
    kind: str  # text | textarea | integer | number | date | checkbox | select | radio | widget
    title: str
    description: str | None = None
    help: str | None = None
    widget: str | None = None  # the registry name when kind == "widget"
    required: bool = False
    required_for: tuple[str, ...] = ()
    options: tuple[tuple[Any, str], ...] = ()  # (value, label) for select and radio

    def required_when(self, action: str | None) -> bool:
        """True when the field must have a value for ``action``."""
        return self.required or (action is not None and action in self.required_for)


@dataclass(frozen=True)
class SchemaForm:
    """A loaded form: its fields in display order and its buttons."""

    schema: Mapping[str, Any]
    ui_schema: Mapping[str, Any]
    title: str | None
    description: str | None
    fields: tuple[Field, ...]
    actions: tuple[Action, ...] = field(default=())

    def action(self, name: str | None) -> Action | None:
        """The action called ``name``, or None when the form has no such button."""
        return next((action for action in self.actions if action.name == name), None)

    def field_actions(self, name: str) -> tuple[Action, ...]:
        """The in-step buttons the widget of field ``name`` draws."""
        return tuple(action for action in self.actions if action.field_name == name)

    def widget_fields(self) -> list[Field]:
        """Fields drawn and read by a named widget."""
        return [item for item in self.fields if item.kind == "widget"]


def read_form_file(name: str, body: bytes, kind: str) -> dict[str, Any]:
    """The JSON object in form file ``name`` ("schema": a JSON Schema, "ui": a UI schema), checked
    completely; FormDefinitionError names the file and what is wrong with it."""
    if kind not in ("schema", "ui"):
        raise ValueError(f"form file kind must be 'schema' or 'ui', not {kind!r}")
    if len(body) > MAX_FORM_BYTES:
        raise FormDefinitionError(f"form file {name} has {len(body):,} bytes; the limit is "
                                  f"{MAX_FORM_BYTES // 1024} KB")
    try:
        document = json.loads(body.decode("utf-8"), parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise FormDefinitionError(f"form file {name} is not UTF-8 text") from None
    except ValueError as error:  # JSONDecodeError, or NaN / Infinity
        raise FormDefinitionError(f"form file {name} is not valid JSON: {error}") from None
    except RecursionError:
        raise FormDefinitionError(f"form file {name} is nested more than {MAX_DEPTH} levels deep") from None
    problem = depth_problem(document)
    if problem is None and not isinstance(document, dict):
        problem = "it must be a JSON object"
    if problem is None and kind == "schema":
        problem = schema_problem(document)
    if problem:
        raise FormDefinitionError(f"form file {name} cannot be used: {problem}")
    if kind == "schema":
        try:
            Draft202012Validator.check_schema(document)
        except SchemaError as error:
            reason = f"form file {name} is not a valid JSON Schema: {error.message}"
            raise FormDefinitionError(reason) from None
    return document


def _refuse_constant(constant: str) -> None:
    """NaN and Infinity are not JSON; Python's reader would accept them."""
    raise ValueError(f"{constant} is not a JSON value")


def load_form(schema: Mapping[str, Any], ui_schema: Mapping[str, Any] | None = None) -> SchemaForm:
    """Check a schema and UI schema pair and turn it into fields and actions."""
    ui_schema = ui_schema or {}
    if not isinstance(schema, Mapping) or schema.get("type") != "object":
        raise FormDefinitionError('The form schema must be a JSON object with "type": "object".')
    problem = depth_problem(schema) or schema_problem(schema)
    if problem:
        raise FormDefinitionError(f"The form schema cannot be used: {problem}.")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        raise FormDefinitionError(f"The form schema is not valid JSON Schema: {error.message}") from None
    properties = schema.get("properties", {})
    required = set(schema.get("required", []))
    fields = tuple(_field(name, properties[name], ui_schema.get(name, {}), name in required)
                   for name in _ordered(properties, ui_schema.get("ui:order", [])))
    actions = _actions(ui_schema.get("ui:actions", []))
    widget_names = {item.name for item in fields if item.kind == "widget"}
    for action in actions:
        if action.field_name is not None and action.field_name not in widget_names:
            raise FormDefinitionError(f'The button "{action.name}" names the field "{action.field_name}", '
                                      "which is not a field drawn by a widget.")
    return SchemaForm(schema, ui_schema, schema.get("title"), schema.get("description"), fields, actions)


@lru_cache(maxsize=CHECKED_FORMS)
def form_from_text(schema_text: str, ui_text: str) -> SchemaForm:
    """load_form of a schema and UI schema given as their file text, checked once per text and
    then shared (never change the result): a definition binds its forms' text, which never
    changes, so the text is the form's version. A form that fails its checks raises each time.
    """
    try:
        schema, ui_schema = json.loads(schema_text), json.loads(ui_text) if ui_text else None
    except (ValueError, RecursionError) as error:
        raise FormDefinitionError(f"The form files are not valid JSON: {error}") from None
    return load_form(schema, ui_schema)


def check_form(schema: Mapping[str, Any], ui_schema: Mapping[str, Any] | None,
               widget_names: Iterable[str]) -> SchemaForm:
    """Load a form and check that every named widget is published (for deploy-time checks)."""
    form = load_form(schema, ui_schema)
    known = set(widget_names)
    for item in form.widget_fields():
        if item.widget not in known:
            raise FormDefinitionError(f'Field "{item.name}" uses the widget "{item.widget}", which is not '
                                      f"published; use one of: {', '.join(sorted(known)) or 'none'}.")
    return form


def render_form(form: SchemaForm, *, action_url: str, csrf_token: str, values: Mapping[str, Any],
                errors: Mapping[str, str], form_errors: Iterable[str] = (),
                widgets: Mapping[str, Markup] | None = None) -> Markup:
    """The form as HTML: fields with their values and errors, widget markup, then the buttons."""
    template = _TEMPLATES.get_template("schema_form.html")
    return Markup(template.render(form=form, action_url=action_url, csrf_token=csrf_token,
                                  values=values, errors=errors, form_errors=list(form_errors),
                                  widgets=widgets or {}))


def _ordered(properties: Mapping[str, Any], order: list[str]) -> list[str]:
    """Field names in "ui:order" first, then the rest in schema order."""
    unknown = [name for name in order if name not in properties]
    if unknown:
        raise FormDefinitionError(f"ui:order names fields the schema does not have: {', '.join(unknown)}.")
    return list(order) + [name for name in properties if name not in order]


def _field(name: str, schema: Mapping[str, Any], ui: Mapping[str, Any], required: bool) -> Field:
    """One field, its kind decided by the UI hint first and the schema type second."""
    widget = ui.get("ui:widget")
    kind = _kind(name, schema, widget)
    options: tuple[tuple[Any, str], ...] = ()
    if kind in ("select", "radio"):
        values = schema.get("enum")
        if not values:
            raise FormDefinitionError(f'Field "{name}": a {kind} needs an "enum" of choices.')
        labels = ui.get("ui:enumNames", [str(value) for value in values])
        if len(labels) != len(values):
            raise FormDefinitionError(f'Field "{name}": ui:enumNames must have one label per enum value.')
        options = tuple(zip(values, labels, strict=True))
    required_for = ui.get("ui:requiredFor", [])
    if not isinstance(required_for, list) or not all(isinstance(item, str) for item in required_for):
        raise FormDefinitionError(f'Field "{name}": ui:requiredFor must be a list of action names.')
    return Field(name=name, schema=schema, kind=kind, title=ui.get("ui:title", schema.get("title", name)),
                 description=schema.get("description"), help=ui.get("ui:help"),
                 widget=widget if kind == "widget" else None, required=required,
                 required_for=tuple(required_for), options=options)


def _kind(name: str, schema: Mapping[str, Any], widget: str | None) -> str:
    """How a field is drawn; objects and arrays need a named widget."""
    if widget is not None and widget not in BUILTIN_WIDGETS:
        return "widget"
    kind_of_type = {"boolean": "checkbox", "integer": "integer", "number": "number", "string": "text"}
    if "enum" in schema:
        return "radio" if widget == "radio" else "select"
    kind = kind_of_type.get(schema.get("type"))
    if kind is None:
        raise FormDefinitionError(f'Field "{name}" of type {schema.get("type")!r} needs a "ui:widget" '
                                  "that can draw it.")
    if kind == "text" and widget == "textarea":
        return "textarea"
    if kind == "text" and schema.get("format") == "date":
        return "date"
    return kind


def _actions(raw: Any) -> tuple[Action, ...]:
    """The buttons; every form needs at least one, each with a unique name and a label."""
    if not isinstance(raw, list) or not raw:
        raise FormDefinitionError('The UI schema needs "ui:actions": a list of {"name", "label"} buttons.')
    actions = []
    for item in raw:
        if not isinstance(item, Mapping) or not item.get("name") or not item.get("label"):
            raise FormDefinitionError(f'Each of "ui:actions" needs a "name" and a "label"; got {item!r}.')
        complete, field_name = item.get("complete", True), item.get("field")
        if not isinstance(complete, bool):
            raise FormDefinitionError(f'"complete" of the button "{item["name"]}" must be true or false.')
        if field_name is not None and (complete or not isinstance(field_name, str)):
            raise FormDefinitionError(f'The button "{item["name"]}": only a button with "complete": false '
                                      'can name a "field" (a field name) to draw it.')
        actions.append(Action(str(item["name"]), str(item["label"]), bool(item.get("validate", True)),
                              item.get("confirm"), complete, field_name))
    names = [action.name for action in actions]
    if len(set(names)) != len(names):
        raise FormDefinitionError('Two of "ui:actions" have the same name.')
    return tuple(actions)
