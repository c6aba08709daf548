"""The admin console's versions: list, source, diff, rollback, the XML editor, uploads, options, forms."""

from __future__ import annotations

import html
import io
import json
import re

import pytest

from engine.config import PROJECT_ROOT
from engine.db import unit_of_work
from engine.versions import current_definition, current_options, list_versions

PROCESS = "TempCardsBoProcIssueMultiple"
OPTIONS = "TempCardsScriptOptions"
SHIPPED = (PROJECT_ROOT / "processes" / f"{PROCESS}.bpmn").read_text()


@pytest.fixture
def admin(login):
    """A logged-in admin."""
    return login("adm", "admin")


def versions(services, kind: str, name: str) -> dict[int, bool]:
    """version -> current, for one name."""
    with unit_of_work(services.sessions) as session:
        return {info.version: info.current for info in list_versions(session, kind, name)}


def save_options(admin, **changes):
    """Post the options form with the shipped values changed by ``changes``."""
    data = {"pin_length": "6", "puk_length": "8", "encode_card": "on", "certificates": "PIV Authentication",
            "validity_days": "14", "action": "save-fields", **changes}
    return admin.post(f"/admin/options/{OPTIONS}", data, page=f"/admin/options/{OPTIONS}")


def test_the_index_lists_every_version_with_the_current_one_and_its_orders(admin, login, services):
    login("op").start()
    page = admin.get("/admin/").text
    for kind, name in (("process", PROCESS), ("option", OPTIONS), ("form", "search_cards.schema.json"),
                       ("form", "supervisor_approval.uischema.json")):
        assert f'id="{kind}-{name}"' in page
    assert "current: v1" in page and "Roll back to" not in page
    with unit_of_work(services.sessions) as session:
        [info] = list_versions(session, "process", PROCESS)
    assert info.orders == 1 and info.content_hash[:12] in page


def test_options_form_saves_a_new_version_keeping_the_script_text(admin, services):
    response = save_options(admin, pin_length="8")
    assert response.status_code == 200 and "Deployed" in response.text
    with unit_of_work(services.sessions) as session:
        current = current_options(session, OPTIONS)
    assert current.version == 2 and current.values["pin_length"] == 8
    assert "# PIN length: how many digits" in current.source and "pin_length = 8" in current.source
    assert versions(services, "option", OPTIONS) == {2: True, 1: False}


@pytest.mark.parametrize("changes, message", [
    ({"pin_length": "5"}, "PIN length must be 6 to 8."),
    ({"pin_length": "²"}, "PIN length: enter a whole number."),
    ({"certificates": "Root CA"}, "Select certificates to be issued: choose from the listed values."),
    ({"encode_card": "off"}, "only valid when encoding is on"),
])
def test_bad_option_values_are_refused_and_change_nothing(admin, services, changes, message):
    response = save_options(admin, **changes)
    assert response.status_code == 400 and message in response.text
    assert versions(services, "option", OPTIONS) == {1: True}


def test_option_text_is_validated_with_its_line_as_at_deploy(admin, services):
    source = admin.get(f"/admin/options/{OPTIONS}").text
    assert "pin_length = 6" in source
    response = admin.post(f"/admin/options/{OPTIONS}", {"source": "import os\npin_length = 6\n",
                                                        "action": "save-text"})
    assert response.status_code == 400
    assert f"options/{OPTIONS}:1</code>: only &#39;name = value&#39; lines are allowed" in response.text
    assert versions(services, "option", OPTIONS) == {1: True}


def test_source_diff_and_rollback(admin, services, login):
    save_options(admin, pin_length="8")
    source = admin.get(f"/admin/option/{OPTIONS}/source?version=1").text
    assert "pin_length = 6" in source and "v1" in source
    diff = admin.get(f"/admin/option/{OPTIONS}/diff?a=1&b=2").text
    assert "1 changed line." in diff and "pin_length = 8" in diff
    assert admin.get(f"/admin/option/{OPTIONS}/diff?a=1&b=9").status_code == 404
    assert admin.get(f"/admin/option/{OPTIONS}/source?version=²").status_code == 404

    response = admin.post(f"/admin/option/{OPTIONS}/rollback", {"version": "1"}, page="/admin/")
    assert response.status_code == 303
    assert versions(services, "option", OPTIONS) == {2: False, 1: True}
    instance_id = login("op").start()
    services.runner.wait(instance_id)
    with unit_of_work(services.sessions) as session:
        from engine.store import Instance
        assert session.get(Instance, instance_id).options[OPTIONS]["version"] == 1
    again = admin.post(f"/admin/option/{OPTIONS}/rollback", {"version": "1"}, page="/admin/")
    assert "already the current version" in admin.get(again.headers["Location"]).text


def test_the_xml_editor_validates_with_lines_and_deploys_a_new_version(admin, services):
    url = f"/admin/processes/{PROCESS}/xml"
    assert "bpmn:definitions" in admin.get(url).text
    same = admin.post(url, {"bpmn": SHIPPED, "process_id": PROCESS, "action": "check"}).text
    assert f"{PROCESS} valid (the same as the current version v1)" in same
    broken = SHIPPED.replace('name="Produce cards"', 'name=""', 1)
    response = admin.post(url, {"bpmn": broken, "process_id": PROCESS, "action": "deploy"})
    line = next(n for n, text in enumerate(broken.splitlines(), 1) if 'name=""' in text)
    assert response.status_code == 400 and f"processes/{PROCESS}.bpmn:{line}</code>" in response.text
    assert versions(services, "process", PROCESS) == {1: True}
    moved = SHIPPED.replace('x="250" y="160"', 'x="260" y="160"', 1)
    deployed = admin.post(url, {"bpmn": moved, "process_id": PROCESS, "action": "deploy"}).text
    assert f"{PROCESS} v2 deployed" in deployed
    assert versions(services, "process", PROCESS) == {2: True, 1: False}


def test_the_check_endpoint_says_when_there_is_nothing_new(admin):
    token = admin.token(f"/admin/processes/{PROCESS}/xml")
    answer = admin.client.post("/admin/processes/check", data={"bpmn": SHIPPED},
                               headers={"X-CSRFToken": token}).get_json()
    assert answer["ok"] and answer["changed"] is False and answer["process_id"] == PROCESS
    assert answer["message"] == "Valid. Nothing new to deploy: the engine spec is the same as version 1."
    deployed = admin.client.post("/admin/processes/deploy", data={"bpmn": SHIPPED},
                                 headers={"X-CSRFToken": token}).get_json()
    assert deployed["ok"] and not deployed["created"] and deployed["version"] == 1
    bad = admin.client.post("/admin/processes/check", data={"bpmn": "<nope"},
                            headers={"X-CSRFToken": token}).get_json()
    assert not bad["ok"] and bad["problems"][0]["line"] == 1 and "not safe, well-formed XML" in \
        bad["problems"][0]["reason"]
    assert admin.client.post("/admin/processes/check", data={"bpmn": SHIPPED}).status_code == 400  # no CSRF


def upload(admin, filename: str, data: bytes, content_type: str, action: str = "deploy"):
    """Post a file to the upload form."""
    return admin.post("/admin/upload", {"action": action, "file": (io.BytesIO(data), filename, content_type)},
                      page="/admin/", content_type="multipart/form-data", follow_redirects=True)


def test_uploads_deploy_and_never_use_the_client_path(admin, services):
    schema = json.dumps({"type": "object", "properties": {"ok": {"type": "boolean"}}}).encode()
    response = upload(admin, "/home/x/../approval_note.schema.json", schema, "application/json")
    assert "approval_note.schema.json v1 deployed" in response.text
    refused = {
        "../../etc/passwd": "Upload a process (.bpmn), a form",
        "evil.json": "A form file is named",
        "x.bpmn": "does not match its name",
    }
    for name, message in refused.items():
        reply = upload(admin, name, b"<x/>", "image/png")
        assert message in admin.get("/admin/").text or message in reply.text, name
    big = upload(admin, "big.bpmn", b"x" * (1024 * 1024 + 10), "application/xml")
    assert "The file is larger than 1024 KB; nothing was changed." in big.text
    with unit_of_work(services.sessions) as session:
        assert [info.name for info in list_versions(session, "form") if "passwd" in info.name] == []


def test_a_form_deploy_rebinds_the_processes_that_use_it(admin, services):
    page = admin.get("/admin/forms/selected_cards")
    assert page.status_code == 200 and "selected_cards.schema.json" in page.text
    schema = json.loads((PROJECT_ROOT / "forms" / "selected_cards.schema.json").read_text())
    schema["description"] = "Check the list, then press Next."
    ui = (PROJECT_ROOT / "forms" / "selected_cards.uischema.json").read_text()
    response = admin.post("/admin/forms/selected_cards", {"schema": json.dumps(schema), "uischema": ui,
                                                          "action": "deploy"})
    assert "selected_cards.schema.json v2 deployed" in response.text
    assert f"{PROCESS} v2 deployed" in response.text
    with unit_of_work(services.sessions) as session:
        bound = json.loads(current_definition(session, PROCESS).forms["selected_cards.schema.json"])
    assert bound["description"] == "Check the list, then press Next."


def test_the_form_preview_is_the_operators_renderer_and_escapes_everything(admin):
    schema = {"type": "object", "title": "<script>alert(1)</script>", "description": "{{ 7*7 }}",
              "properties": {"note": {"type": "string", "title": "<b>Note</b>"}}}
    ui = {"ui:actions": [{"name": "next", "label": "Next <img src=x>"}]}
    token = admin.token("/admin/forms/selected_cards")
    posted = {"schema": json.dumps(schema), "uischema": json.dumps(ui)}
    html = admin.client.post("/admin/forms/preview", data=posted,
                             headers={"X-CSRFToken": token}).get_json()["html"]
    assert "<fieldset disabled" in html and 'class="task-form"' in html
    assert "<script>" not in html and "<b>Note" not in html and "<img" not in html and "{{ 7*7 }}" in html
    broken = admin.client.post("/admin/forms/preview", data={"schema": "{", "uischema": "{}"},
                               headers={"X-CSRFToken": token}).get_json()["html"]
    assert "No preview" in broken


def test_a_form_the_renderer_cannot_draw_is_refused(admin, services):
    schema = json.dumps({"type": "object", "properties": {"x": {"type": "object"}}})
    response = admin.post("/admin/forms/broken_one", {"schema": schema, "uischema": '{"ui:actions": []}',
                                                      "action": "deploy"}, page="/admin/forms/broken_one")
    assert response.status_code == 400 and "Deploy refused" in response.text
    with unit_of_work(services.sessions) as session:
        assert not [i for i in list_versions(session, "form") if i.name.startswith("broken_one")]


def test_validate_in_the_browser_says_what_cardflow_deploy_check_says(admin, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from engine.cli import main

    broken = SHIPPED.replace('name="Produce cards"', 'name=""', 1).replace('id="cards_produce"',
                                                                          'id="cards_print"', 1)
    (tmp_path / "processes").mkdir()
    (tmp_path / "processes" / f"{PROCESS}.bpmn").write_text(broken)
    monkeypatch.chdir(tmp_path)
    settings = admin.services.settings
    env = {"CARDFLOW_INSTANCE_PATH": str(settings.instance_path),
           "CARDFLOW_DATABASE_URL": settings.database_url}
    cli = CliRunner().invoke(main, ["deploy", "--check", f"processes/{PROCESS}.bpmn"], env=env)
    assert cli.exit_code == 1
    cli_problems = [line for line in cli.output.splitlines() if line.startswith(f"processes/{PROCESS}")]
    assert len(cli_problems) == 2

    page = admin.post(f"/admin/processes/{PROCESS}/xml", {"bpmn": broken, "process_id": PROCESS,
                                                         "action": "check"}).text
    shown = [re.sub(r"<[^>]+>", "", html.unescape(item)).strip()
             for item in re.findall(r"<li>(.*?)</li>", page.split('class="problems"')[1].split("</ul>")[0])]
    assert shown == cli_problems
