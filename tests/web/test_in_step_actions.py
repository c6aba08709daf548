"""Buttons that do not complete the step ("complete": false): how a form declares them, who draws
them, and what a post of one reads (the widgets, never the schema's checks)."""

from __future__ import annotations

import pytest
from werkzeug.datastructures import MultiDict

from engine.forms.schema_form import FormDefinitionError, load_form, render_form
from engine.forms.validation import read_submission
from engine.forms.widgets import FormError, Redraw

SCHEMA = {"type": "object", "properties": {
    "pick": {"type": "object", "title": "Cards", "properties": {"n": {"type": "integer", "minimum": 1}},
             "required": ["n"]},
    "note": {"type": "string", "title": "Note"}},
    "required": ["pick", "note"]}
UI = {"pick": {"ui:widget": "picker"}, "ui:actions": [
    {"name": "go", "label": "Go"},
    {"name": "cancel", "label": "Cancel", "validate": False},
    {"name": "more", "label": "Show more", "complete": False, "field": "pick"},
    {"name": "refresh", "label": "Refresh", "complete": False}]}


def post(**fields) -> MultiDict:
    """A browser-like post."""
    return MultiDict(fields)


def test_a_button_drawn_by_its_widget_is_not_in_the_bar():
    form = load_form(SCHEMA, UI)
    assert [action.name for action in form.field_actions("pick")] == ["more"]
    html = render_form(form, action_url="/post", csrf_token="t", values={}, errors={}, widgets={"pick": ""})
    assert 'value="more"' not in html and ">Show more<" not in html
    drawn = " ".join(html.split())
    assert '<button type="submit" name="action" value="refresh" class="secondary" formnovalidate>' in drawn


def test_an_in_step_post_reads_the_widgets_and_skips_the_schema():
    seen = []

    def extract(item, action):
        seen.append((item.name, action.name))
        return Redraw({"number": "TC-1"})

    result = read_submission(load_form(SCHEMA, UI), post(action="more"), extract)
    assert result.ok and not result.action.complete and seen == [("pick", "more")]
    assert result.redraw == {"number": "TC-1"} and result.data == {"action": "more"}
    # The same post with the completing button fails the schema: "note" is required.
    completing = read_submission(load_form(SCHEMA, UI), post(action="go"), lambda item, action: {"n": 2})
    assert not completing.ok and completing.errors == {"note": "Note is required."}


def test_an_in_step_post_the_widget_refuses_is_not_ok():
    def refuse(item, action):
        raise FormError("That card is taken.")

    result = read_submission(load_form(SCHEMA, UI), post(action="refresh"), refuse)
    assert not result.ok and result.errors == {"pick": "That card is taken."} and result.redraw is None


def test_cancel_still_reads_no_widget():
    def never(item, action):
        raise AssertionError("Cancel must not touch what widgets manage")

    assert read_submission(load_form(SCHEMA, UI), post(action="cancel"), never).ok


@pytest.mark.parametrize(("action", "message"), [
    ({"name": "x", "label": "X", "complete": "no"}, '"complete" of the button "x" must be true or false.'),
    ({"name": "x", "label": "X", "field": "pick"}, 'only a button with "complete": false can name a "field"'),
    ({"name": "x", "label": "X", "complete": False, "field": ["pick"]}, 'can name a "field"'),
    ({"name": "x", "label": "X", "complete": False, "field": "note"},
     'The button "x" names the field "note", which is not a field drawn by a widget.'),
    ({"name": "x", "label": "X", "complete": False, "field": "nothing"}, "not a field drawn by a widget"),
])
def test_a_wrong_in_step_button_is_refused_with_the_reason(action, message):
    ui = {**UI, "ui:actions": [{"name": "go", "label": "Go"}, action]}
    with pytest.raises(FormDefinitionError) as refused:
        load_form(SCHEMA, ui)
    assert message in str(refused.value)
