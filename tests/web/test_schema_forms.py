"""Forms from JSON Schema + UI hints: what is drawn, how posts are read, what the operator is told."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pytest
from markupsafe import Markup
from werkzeug.datastructures import MultiDict

from engine import bootstrap
from engine.forms.schema_form import (
    Action,
    Field,
    FormDefinitionError,
    SchemaForm,
    check_form,
    load_form,
    render_form,
)
from engine.forms.validation import read_submission
from engine.forms.widgets import FormError

FORMS = Path(__file__).resolve().parents[2] / "forms"
WIDGETS = {"card_picker", "order_cards", "production_review"}

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "title": "Name", "maxLength": 10},
        "count": {"type": "integer", "title": "Count", "minimum": 1},
        "ratio": {"type": "number", "title": "Ratio"},
        "colour": {"type": "string", "title": "Colour", "enum": ["red", "blue"]},
        "size": {"type": "integer", "title": "Size", "enum": [1, 2]},
        "note": {"type": "string", "title": "Note"},
        "ok": {"type": "boolean", "title": "Everything is OK"},
    },
    "required": ["name"],
}
UI = {
    "ui:order": ["ok", "name"],
    "note": {"ui:widget": "textarea", "ui:help": "Say <why>"},
    "size": {"ui:widget": "radio", "ui:enumNames": ["Small", "Large"]},
    "ok": {"ui:requiredFor": ["save"]},
    "ui:actions": [{"name": "save", "label": "Save"},
                   {"name": "cancel", "label": "Cancel", "validate": False},
                   {"name": "draft", "label": "Keep as draft"}],
}


def form():
    """The test form."""
    return load_form(SCHEMA, UI)


def post(**fields):
    """A browser-like post: every value a string."""
    return MultiDict(fields)


SHIPPED = ["search_cards", "selected_cards", "review_production", "supervisor_approval"]


@pytest.mark.parametrize("stem", SHIPPED)
def test_shipped_forms_load_with_published_widgets(stem):
    schema = json.loads((FORMS / f"{stem}.schema.json").read_text())
    ui = json.loads((FORMS / f"{stem}.uischema.json").read_text())
    assert check_form(schema, ui, WIDGETS).actions


def test_buttons_carry_the_spec_labels():
    labels = {}
    for stem in ("search_cards", "selected_cards", "review_production"):
        loaded = load_form(json.loads((FORMS / f"{stem}.schema.json").read_text()),
                           json.loads((FORMS / f"{stem}.uischema.json").read_text()))
        labels[stem] = [action.label for action in loaded.actions if action.in_bar]
        if stem == "search_cards":
            # The picker draws its in-step buttons next to what they act on.
            assert [action.label for action in loaded.field_actions("selection")] == [
                "Search", "Keep the ticks and change page", "Select this page", "Clear selection"]
    assert labels == {"search_cards": ["Issue multiple temporary cards", "Cancel"],
                      "selected_cards": ["Next", "Cancel"],
                      "review_production": ["Complete order", "Repeat production", "Cancel"]}


def test_render_orders_fields_marks_required_and_escapes():
    html = render_form(form(), action_url="/post", csrf_token="tok", values={"name": "<b>x</b>"},
                       errors={"count": "Count must be at least 1."}, widgets={})
    assert isinstance(html, Markup)
    assert html.index('name="ok"') < html.index('name="name"') < html.index('name="count"')
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html
    assert "Say &lt;why&gt;" in html
    assert "<textarea" in html and 'type="radio"' in html and "Large</label>" in html
    assert 'name="action" value="cancel"' in html and "formnovalidate" in html
    assert "Count must be at least 1." in html and 'class="required"' in html


def test_post_becomes_typed_data():
    result = read_submission(form(), post(action="save", name=" Ann ", count="3", ratio="1.5", colour="red",
                                          size="2", note="hi", ok="true"))
    assert result.ok, result.errors
    assert result.data == {"action": "save", "name": "Ann", "count": 3, "ratio": 1.5, "colour": "red",
                           "size": 2, "note": "hi", "ok": True}


@pytest.mark.parametrize(("fields", "field", "message"), [
    ({"count": "three"}, "count", "Count: enter a whole number, such as 12."),
    ({"count": "0"}, "count", "Count must be at least 1."),
    ({"ratio": "nan"}, "ratio", "Ratio: enter a finite number."),
    ({"colour": "green"}, "colour", "Colour: choose one of the listed values."),
    ({"name": "x" * 11}, "name", "Name can have at most 10 characters."),
    ({"name": "  "}, "name", "Name is required."),
    ({"ok": "maybe"}, "ok", "Everything is OK: tick the box or leave it empty."),
])
def test_bad_values_get_plain_messages(fields, field, message):
    values = {"action": "save", "name": "Ann", "ok": "true", **fields}
    result = read_submission(form(), post(**values))
    assert not result.ok
    assert result.errors[field] == message


def test_required_for_an_action_only():
    assert read_submission(form(), post(action="save", name="Ann")).errors == {
        "ok": "Tick \u201cEverything is OK\u201d to go on."}
    draft = read_submission(form(), post(action="draft", name="Ann"))
    assert draft.ok and draft.data["ok"] is False


def test_cancel_skips_validation_and_sends_only_the_action():
    result = read_submission(form(), post(action="cancel", count="not a number"))
    assert result.ok and result.data == {"action": "cancel"}


@pytest.mark.parametrize("action", [None, "delete", ""])
def test_action_must_be_one_of_the_buttons(action):
    fields = {"name": "Ann"} if action is None else {"name": "Ann", "action": action}
    result = read_submission(form(), post(**fields))
    assert not result.ok and result.action is None
    assert result.form_errors == ['Use one of the buttons of this step: "Save", "Cancel", "Keep as draft".']


def test_a_field_sent_twice_is_refused():
    posted = MultiDict([("action", "save"), ("name", "a"), ("name", "b"), ("ok", "on")])
    result = read_submission(form(), posted)
    assert result.errors == {"name": "Name was sent more than once; reload the page."}


def test_widget_values_and_errors():
    pick = {"type": "object", "title": "Cards", "properties": {"n": {"type": "integer", "minimum": 1}}}
    schema = {"type": "object", "properties": {"pick": pick}}
    ui = {"pick": {"ui:widget": "picker"}, "ui:actions": [{"name": "go", "label": "Go"}]}
    loaded = load_form(schema, ui)
    ok = read_submission(loaded, post(action="go"), lambda field, action: {"n": 2})
    assert ok.ok and ok.data == {"action": "go", "pick": {"n": 2}}
    out_of_range = read_submission(loaded, post(action="go"), lambda field, action: {"n": 0})
    assert out_of_range.errors == {"pick": "Cards must be at least 1."}

    def refuse(field, action):
        raise FormError("Tick at least one card.")

    assert read_submission(loaded, post(action="go"), refuse).errors == {"pick": "Tick at least one card."}


@pytest.mark.parametrize(("schema", "ui", "message"), [
    ({"type": "array"}, {}, 'must be a JSON object with "type": "object"'),
    ({"type": "object", "properties": {"a": {"type": "nonsense"}}}, {}, "not valid JSON Schema"),
    ({"type": "object", "properties": {"a": {"type": "object"}}},
     {"ui:actions": [{"name": "x", "label": "X"}]}, 'needs a "ui:widget"'),
    ({"type": "object"}, {}, '"ui:actions"'),
    ({"type": "object"}, {"ui:order": ["ghost"], "ui:actions": [{"name": "x", "label": "X"}]}, "ghost"),
    ({"type": "object"}, {"ui:actions": [{"name": "x", "label": "X"}, {"name": "x", "label": "Y"}]},
     "same name"),
])
def test_unusable_form_files_are_refused_with_the_reason(schema, ui, message):
    with pytest.raises(FormDefinitionError, match=message):
        load_form(schema, ui)


def test_unknown_widget_is_refused():
    schema = {"type": "object", "properties": {"a": {"type": "object"}}}
    ui = {"a": {"ui:widget": "mystery"}, "ui:actions": [{"name": "x", "label": "X"}]}
    with pytest.raises(FormDefinitionError, match='widget "mystery"'):
        check_form(schema, ui, WIDGETS)


# --- hostile form files: stored before today's checks, or written to attack -------------------------

HOSTILE = "<script>alert(1)</script> {{ 7*7 }}"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt; {{ 7*7 }}"


@pytest.mark.parametrize(("schema", "message"), [
    ({"type": "object", "properties": {"a": {"$ref": "http://127.0.0.1:9/a.json"}}}, "must point inside"),
    ({"type": "object", "properties": {"a": {"$ref": "file:///etc/passwd"}}}, "must point inside"),
    ({"$id": "http://127.0.0.1:9/", "type": "object"}, "uses \\$id"),
    ({"type": "object", "properties": {"a": {"type": "string", "pattern": "(a+)+$"}}}, "exponential time"),
    ({"type": "object", "properties": {"a": {"$ref": "#/properties/a"}}}, "would never end"),
    (json.loads('{"type": "object", "properties": {"a": ' + '{"items": ' * 40 + "{}" + "}" * 42),
     "nested more than 32 levels"),
])
def test_a_stored_form_that_is_unsafe_is_refused_when_loaded(schema, message):
    ui = {"ui:actions": [{"name": "go", "label": "Go"}]}
    with pytest.raises(FormDefinitionError, match=f"The form schema cannot be used: .*{message}"):
        load_form(schema, ui)


def test_validating_a_post_never_fetches_a_reference(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    (tmp_path / "b.json").write_text('{"type": "string"}')
    schema = {"type": "object", "properties": {"code": {"allOf": [
        {"$ref": f"http://127.0.0.1:{port}/a.json"}, {"$ref": f"file://{tmp_path}/b.json"}]}}}
    stored_before = SchemaForm(schema, {}, None, None, (
        Field("code", {"type": "string"}, "text", "Code"),), (Action("go", "Go"),))
    with listener:
        result = read_submission(stored_before, post(action="go", code="x"))
        with pytest.raises(TimeoutError):
            listener.accept()
    assert not result.ok
    assert "refers to a definition outside itself" in result.form_errors[0]
    assert "ask an admin to deploy a corrected form" in result.form_errors[0]


def test_admin_text_in_a_form_is_drawn_as_text_never_as_markup_or_template():
    schema = {"type": "object", "title": HOSTILE, "description": HOSTILE,
              "properties": {"note": {"type": "string", "title": HOSTILE, "description": HOSTILE},
                             "pick": {"type": "string", "enum": ["a"], "title": "Pick"}},
              "required": ["note"]}
    ui = {"note": {"ui:help": HOSTILE}, "pick": {"ui:widget": "radio", "ui:enumNames": [HOSTILE]},
          "ui:actions": [{"name": "go", "label": HOSTILE, "confirm": HOSTILE + '" onclick="x()'}]}
    html = str(render_form(load_form(schema, ui), action_url="/post", csrf_token="tok",
                           values={"note": HOSTILE}, errors={"note": HOSTILE}, form_errors=[HOSTILE]))
    assert "<script>" not in html and "alert(1)</script>" not in html and "49" not in html
    # the form's description; the note's label, description, help, value and error; the form error,
    # the radio label, the button's label and its confirmation
    assert html.count(ESCAPED) == 10
    assert 'onclick="x()' not in html and "&#34; onclick=&#34;x()" in html


def test_admin_text_on_the_console_pages_is_drawn_as_text(login, services, tmp_path):
    source = tmp_path / "source"
    for folder in ("processes", "forms", "options"):
        shutil.copytree(services.settings.source_path / folder, source / folder)
    bpmn = source / "processes" / "TempCardsBoProcIssueMultiple.bpmn"
    escaped_for_xml = HOSTILE.replace("<", "&lt;").replace(">", "&gt;")
    bpmn.write_text(bpmn.read_text().replace('name="Search cards"', f'name="{escaped_for_xml}"'))
    schema_file = source / "forms" / "search_cards.schema.json"
    schema = json.loads(schema_file.read_text())
    schema["description"] = schema["properties"]["selection"]["title"] = HOSTILE
    schema_file.write_text(json.dumps(schema))
    ui_file = source / "forms" / "search_cards.uischema.json"
    ui = json.loads(ui_file.read_text())
    ui["selection"]["ui:help"] = HOSTILE
    ui_file.write_text(json.dumps(ui))
    services.settings.source_path = source
    assert any("v2 deployed" in line for line in bootstrap.deploy(services, "admin"))

    op = login()
    instance_id = op.start()
    page = op.order_page(instance_id)
    assert f"<h1>{ESCAPED}</h1>" in page and f"<title>{ESCAPED} - cardflow</title>" in page
    assert page.count(ESCAPED) >= 5  # heading, title, form description, field legend, help
    assert "<script>alert" not in page and ">49<" not in page and " 49 " not in page
    inbox = op.get("/batch-orders").get_data(as_text=True)
    assert f"Waiting for you: {ESCAPED}" in inbox and "<script>alert" not in inbox
