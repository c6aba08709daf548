"""Reading a posted form: the chosen button, typed values per the schema, errors in plain language.

Browsers post strings; the schema says what they become. The data handed to the engine is the
action plus the typed fields, validated with JSON Schema (Draft 2020-12) first. A button whose
action does not validate (Cancel) sends only the action. A button that does not complete the step
lets the widgets read the post and store what it asks; the schema, which is about completing the
step, is not checked then. Validation reads nothing but the form
itself: its reference registry retrieves nothing (no URL, no file), whatever a stored form says.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from jsonschema import Draft202012Validator, ValidationError
from referencing import Registry
from referencing.exceptions import Unresolvable

from engine.forms.schema_form import Action, Field, SchemaForm
from engine.forms.widgets import FormError, Redraw

TRUE_VALUES = frozenset({"true", "on", "1", "yes"})
# An empty registry: a $ref that is not inside the form itself cannot be resolved, never fetched.
NO_RETRIEVAL = Registry()

Extract = Callable[[Field, Action], Any]


@dataclass
class Submission:
    """A read post: what goes to the engine, what to redraw, and what was wrong."""

    action: Action | None
    data: dict[str, Any] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    form_errors: list[str] = field(default_factory=list)
    redraw: dict[str, str] | None = None  # an in-step action's query arguments for the step drawn again

    @property
    def ok(self) -> bool:
        """True when the post can go to the engine as it is."""
        return self.action is not None and not self.errors and not self.form_errors


def read_submission(form: SchemaForm, posted: Any, extract: Extract | None = None) -> Submission:
    """Turn ``posted`` (a multi-dict of strings) into typed, validated data for ``form``.

    ``extract`` reads a widget field (it may raise FormError); it is only called for actions
    that validate or do not complete the step, so Cancel never touches what widgets manage.
    """
    action = form.action(posted.get("action"))
    if action is None:
        labels = ", ".join(f'"{item.label}"' for item in form.actions)
        return Submission(None, form_errors=[f"Use one of the buttons of this step: {labels}."])
    result = Submission(action, data={"action": action.name})
    if not action.complete:
        for item in form.widget_fields():
            _read_widget(item, action, extract, result)
        return result
    if not action.validate:
        return result
    for item in form.fields:
        if item.kind == "widget":
            _read_widget(item, action, extract, result)
        else:
            _read_plain(item, posted, result)
    fields = {key: value for key, value in result.data.items() if key != "action"}
    validator = Draft202012Validator(form.schema, registry=NO_RETRIEVAL,
                                     format_checker=Draft202012Validator.FORMAT_CHECKER)
    try:
        for error in validator.iter_errors(fields):
            _record(form, error, result)
    except Unresolvable as error:
        result.form_errors.append(f"This step's form refers to a definition outside itself ({error}); "
                                  "ask an admin to deploy a corrected form.")
        return result
    for item in form.fields:
        if item.required_when(action.name) and item.name not in fields and item.name not in result.errors:
            result.errors[item.name] = _missing(item)
    for item in form.fields:
        if item.kind == "checkbox":
            result.data.setdefault(item.name, False)
    return result


def _read_widget(item: Field, action: Action, extract: Extract | None, result: Submission) -> None:
    """Ask the field's widget for its value; its FormError becomes the field's message."""
    if extract is None:
        result.form_errors.append(f'"{item.title}" cannot be read here.')
        return
    try:
        value = extract(item, action)
    except FormError as error:
        result.errors[item.name] = str(error)
        return
    if isinstance(value, Redraw):
        result.redraw = dict(value.args)
    elif value is not None:
        result.data[item.name] = value


def _read_plain(item: Field, posted: Any, result: Submission) -> None:
    """Convert one posted string to the field's type; empty means "not given"."""
    raw_values = posted.getlist(item.name) if hasattr(posted, "getlist") else [posted.get(item.name)]
    raw_values = [value for value in raw_values if value is not None]
    if len(raw_values) > 1:
        result.errors[item.name] = f"{item.title} was sent more than once; reload the page."
        return
    raw = raw_values[0] if raw_values else ""
    result.values[item.name] = raw
    if item.kind == "text":
        raw = raw.strip()
    if raw == "" or (item.kind == "checkbox" and raw.lower() in ("false", "off")):
        return
    try:
        value = _convert(item, raw)
    except ValueError as error:
        result.errors[item.name] = str(error)
        return
    result.data[item.name] = value
    result.values[item.name] = value


def _convert(item: Field, raw: str) -> Any:
    """The typed value of ``raw``; ValueError with a plain message when it is not one."""
    if item.kind in ("select", "radio"):
        for option, _label in item.options:
            if str(option) == raw:
                return option
        raise ValueError(f"{item.title}: choose one of the listed values.")
    if item.kind == "checkbox":
        if raw.lower() in TRUE_VALUES:
            return True
        raise ValueError(f"{item.title}: tick the box or leave it empty.")
    if item.kind == "integer":
        try:
            return int(raw.strip())
        except ValueError:
            raise ValueError(f"{item.title}: enter a whole number, such as 12.") from None
    if item.kind == "number":
        try:
            number = float(raw.strip())
        except ValueError:
            raise ValueError(f"{item.title}: enter a number, such as 1.5.") from None
        if not math.isfinite(number):
            raise ValueError(f"{item.title}: enter a finite number.")
        return number
    if item.kind == "date":
        try:
            return date.fromisoformat(raw.strip()).isoformat()
        except ValueError:
            raise ValueError(f"{item.title}: enter a date as YYYY-MM-DD.") from None
    return raw


def _missing(item: Field) -> str:
    """The message for a field that needs a value."""
    if item.kind == "checkbox":
        return f"Tick \u201c{item.title}\u201d to go on."
    return f"{item.title} is required."


def _record(form: SchemaForm, error: ValidationError, result: Submission) -> None:
    """File a JSON Schema error under its top-level field, phrased for the operator."""
    path = list(error.absolute_path)
    if not path and error.validator == "required":
        for name in error.validator_value:
            if name not in error.instance:
                target = next((item for item in form.fields if item.name == name), None)
                if target is not None:
                    result.errors.setdefault(name, _missing(target))
                else:
                    result.form_errors.append(f"{name} is required.")
        return
    target = next((item for item in form.fields if path and item.name == path[0]), None)
    if target is None:
        result.form_errors.append(f"The form's data is not acceptable: {error.message}.")
        return
    result.errors.setdefault(target.name, _phrase(target, error))


def _phrase(item: Field, error: ValidationError) -> str:
    """A plain-language message for one JSON Schema keyword."""
    title, limit = item.title, error.validator_value
    messages: Mapping[str, str] = {
        "required": f"{title} is incomplete.",
        "type": f"{title} has the wrong kind of value.",
        "minLength": (f"{title} must not be empty." if limit == 1
                      else f"{title} needs at least {limit} characters."),
        "maxLength": f"{title} can have at most {limit} characters.",
        "minimum": f"{title} must be at least {limit}.",
        "maximum": f"{title} must be at most {limit}.",
        "exclusiveMinimum": f"{title} must be more than {limit}.",
        "exclusiveMaximum": f"{title} must be less than {limit}.",
        "pattern": f"{title} is not in the expected format.",
        "enum": f"{title}: choose one of the listed values.",
        "const": (f"Tick \u201c{title}\u201d to go on." if limit is True else f"{title} must be {limit}."),
        "format": f"{title} is not a valid {limit}.",
        "multipleOf": f"{title} must be a multiple of {limit}.",
    }
    return messages.get(str(error.validator), f"{title}: {error.message}.")
