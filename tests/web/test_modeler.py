"""The process drawn and edited with bpmn-js, served by the app itself, in headless Chromium."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
from lxml import etree
from playwright import sync_api
from sqlalchemy import select

from engine.bootstrap import published_widgets
from engine.db import unit_of_work
from engine.process_validation import ValidatedProcess, validate_process_bytes
from engine.store import Definition
from engine.versions import current_forms, get_version
from engine.web.bpmn_assets import FILES, installed_version
from tests.web.conftest import PASSWORD
from tests.web.modeler_steps import insert_task_before, insert_user_task_before

PROCESS = "TempCardsBoProcIssueMultiple"
MODELER = f"/admin/processes/{PROCESS}/modeler"
NS = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
      "spiffworkflow": "http://spiffworkflow.org/bpmn/schema/1.0/core"}
# Recorded before any page script runs, so nothing the page does can hide a violation.
RECORD_CSP = ("window.cspViolations = [];"
              "document.addEventListener('securitypolicyviolation',"
              " (e) => window.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));")
expect = sync_api.expect


@dataclass
class AdminBrowser:
    """A logged-in admin's page, with every request, response and console error it caused."""

    page: sync_api.Page
    url: str
    requests: list[str] = field(default_factory=list)
    content_types: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def open(self, path: str) -> None:
        """Go to ``path`` and wait until bpmn-js has drawn the diagram; record only from here."""
        self.requests.clear()
        self.content_types.clear()
        self.errors.clear()
        self.page.goto(f"{self.url}{path}")
        expect(self.page.locator(".bpmn-canvas")).to_have_attribute("data-state", "ready")

    def csp_violations(self) -> list[str]:
        """What the Content-Security-Policy blocked on the current page."""
        return self.page.evaluate("window.cspViolations")

    def press(self, button: str, outcome: str) -> None:
        """Press Validate or Deploy and wait for the status to say ``outcome``."""
        self.page.get_by_role("button", name=button).click()
        expect(self.page.get_by_role("status")).to_contain_text(outcome)

    def exported(self) -> str:
        """The XML the page sent with the last Validate or Deploy."""
        return self.page.locator("#modeler-export").input_value()

    def select(self, element_id: str) -> sync_api.Locator:
        """Click an element on the canvas; the properties panel, showing it."""
        self.page.locator(f".djs-element[data-element-id='{element_id}']").click()
        panel = self.page.locator("#modeler-properties")
        expect(panel.locator("#prop-id")).to_have_value(element_id)
        return panel

    def assert_clean(self) -> None:
        """No console error, no CSP violation, and every request went to the app itself."""
        assert self.errors == []
        assert self.csp_violations() == []
        assert {urlsplit(url).hostname for url in self.requests} == {"127.0.0.1"}


@pytest.fixture
def admin(chromium, live_url, make_user) -> Iterator[AdminBrowser]:
    """An admin logged in to the console in a fresh browser context."""
    make_user("admin", "admin", PASSWORD)
    context = chromium.new_context(viewport={"width": 1600, "height": 1000})
    context.add_init_script(RECORD_CSP)
    page = context.new_page()
    page.set_default_timeout(30_000)
    browser = AdminBrowser(page, live_url)
    page.on("request", lambda request: browser.requests.append(request.url))
    page.on("response", lambda response: browser.content_types.update(
        {urlsplit(response.url).path: response.headers.get("content-type", "")}))
    page.on("console", lambda message: message.type == "error" and browser.errors.append(message.text))
    page.on("pageerror", lambda error: browser.errors.append(str(error)))
    page.goto(f"{live_url}/login")
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    yield browser
    context.close()


def engine_check(services, xml: str) -> ValidatedProcess:
    """What deploy makes of ``xml`` against the deployed forms and the published operators."""
    with unit_of_work(services.sessions) as session:
        forms = current_forms(session)
    return validate_process_bytes(xml.encode("utf-8"), f"{PROCESS}.bpmn", forms, services.registry.names(),
                                  published_widgets().names())


def test_the_bpmn_js_files_are_served_by_the_app_with_their_types(login):
    admin = login("admin", "admin")
    for name, content_type in FILES.items():
        with admin.get(f"/bpmn-js/{installed_version()}/{name}") as response:
            assert response.status_code == 200, name
            assert response.mimetype == content_type
            assert response.cache_control.max_age == 365 * 24 * 3600
            assert response.cache_control.immutable
            assert response.content_length > 1000


def test_only_the_allowed_bpmn_js_files_of_the_installed_version_are_served(app, login):
    assert app.test_client().get(f"/bpmn-js/{installed_version()}/assets/bpmn-js.css").status_code == 302
    admin = login("admin", "admin")
    for name in ("bpmn-modeler.development.js", "../package.json", "assets/../../package.json",
                 "assets/bpmn-font/css/bpmn-embedded.css"):
        assert admin.get(f"/bpmn-js/{installed_version()}/{name}").status_code == 404, name
    assert admin.get("/bpmn-js/0.0.1/assets/bpmn-js.css").status_code == 404


def test_the_diagram_and_the_modeler_are_for_admins(login):
    operator = login("op", "operator")
    for page in ("diagram", "modeler"):
        assert operator.get(f"/admin/processes/{PROCESS}/{page}").status_code == 403
    admin = login("admin", "admin")
    for page in ("diagram", "modeler"):
        assert admin.get(f"/admin/processes/{PROCESS}/{page}").status_code == 200
        missing = admin.get(f"/admin/processes/{PROCESS}/{page}?version=9")
        assert missing.status_code == 404
        assert f"There is no process {PROCESS} with version 9." in missing.get_data(as_text=True)
        assert admin.get(f"/admin/processes/NoSuchProcess/{page}").status_code == 404


@pytest.mark.browser
def test_a_stored_version_is_drawn_as_its_diagram(admin):
    admin.open(f"/admin/processes/{PROCESS}/diagram?version=1")
    page = admin.page
    expect(page.locator("h1")).to_have_text("Process Issue multiple temporary cards, version 1")
    expect(page.locator(".djs-element[data-element-id='Activity_Produce']")).to_be_visible()
    assert page.locator(".djs-palette").count() == 0
    viewer = f"/bpmn-js/{installed_version()}/bpmn-navigated-viewer.production.min.js"
    assert admin.content_types[viewer].startswith("text/javascript")
    page.screenshot(path="/tmp/cardflow-diagram.png")
    admin.assert_clean()
    page.get_by_role("link", name="Edit in the modeler").click()
    expect(page.locator("h1")).to_have_text("Edit process Issue multiple temporary cards")


@pytest.mark.browser
def test_the_shipped_process_opens_in_the_modeler_with_everything_local(admin):
    admin.open(MODELER)
    page = admin.page
    expect(page).to_have_title("Edit process Issue multiple temporary cards - cardflow")
    expect(page.get_by_role("link", name="Raw XML")).to_have_attribute(
        "href", f"/admin/processes/{PROCESS}/xml?version=1")
    page.wait_for_load_state("networkidle")  # the icon font comes once the diagram is drawn
    served = {path: kind.split(";")[0] for path, kind in admin.content_types.items() if "/bpmn-js/" in path}
    prefix = f"/bpmn-js/{installed_version()}/"
    assert served == {prefix + name: kind for name, kind in FILES.items()
                      if name != "bpmn-navigated-viewer.production.min.js"
                      and name.rsplit(".", 1)[-1] not in ("woff", "ttf")}
    page.screenshot(path="/tmp/cardflow-modeler.png")
    admin.assert_clean()


@pytest.mark.browser
def test_a_round_trip_without_edits_gives_the_same_engine_spec(admin, services):
    admin.open(MODELER)
    admin.press("Validate", "Nothing new to deploy: the engine spec is the same as version 1.")
    exported = admin.exported()
    with unit_of_work(services.sessions) as session:
        deployed = get_version(session, "process", PROCESS, 1)
        spec_json, content_hash = deployed.spec_json, deployed.content_hash
    assert exported != deployed.bpmn_xml  # bpmn-js writes its own XML, yet the engine sees no change
    again = engine_check(services, exported)
    assert json.loads(again.spec_json) == json.loads(spec_json)
    assert again.content_hash == content_hash
    admin.press("Deploy", "Nothing new to deploy: the engine spec is the same as version 1.")
    with unit_of_work(services.sessions) as session:
        versions = session.scalars(select(Definition.version).where(Definition.process_id == PROCESS))
        assert versions.all() == [1]
    admin.assert_clean()


@pytest.mark.browser
def test_properties_panel_edits_reach_the_exported_xml_and_undo_takes_them_back(admin):
    admin.open(MODELER)
    page = admin.page
    panel = admin.select("Gateway_Reserved")
    condition = panel.get_by_label("Condition to Selected cards (Flow_Reserved)")
    expect(condition).to_have_value('reservation["ok"]')
    condition.fill('reservation["ok"] and reservation["count"] > 0')
    condition.press("Tab")

    panel = admin.select("Activity_Release")
    expect(panel.get_by_label("Operator")).to_have_value("order_release")
    panel.get_by_role("button", name="Add parameter").click()
    panel.get_by_label("Parameter 2 id").fill("reason")
    panel.get_by_label("Parameter 2 id").press("Tab")
    panel.get_by_label("Parameter 2 value").fill('"cancelled"')
    panel.get_by_label("Parameter 2 value").press("Tab")
    panel.get_by_label("Operator").select_option("order_complete")
    expect(panel.get_by_label("Operator")).to_have_value("order_complete")
    page.locator("#modeler-canvas").click(position={"x": 600, "y": 600})
    page.keyboard.press("Control+z")
    panel = admin.select("Activity_Release")
    expect(panel.get_by_label("Operator")).to_have_value("order_release")

    admin.press("Validate", "Valid; Deploy makes a new version.")
    root = etree.fromstring(admin.exported().encode())
    flow = root.find(".//bpmn:sequenceFlow[@id='Flow_Reserved']/bpmn:conditionExpression", NS)
    assert flow.text == 'reservation["ok"] and reservation["count"] > 0'
    operator = root.find(".//bpmn:serviceTask[@id='Activity_Release']//spiffworkflow:serviceTaskOperator", NS)
    assert operator.get("id") == "order_release"
    assert [p.attrib for p in operator.iterfind(".//spiffworkflow:parameter", NS)] == [
        {"id": "order_id", "type": "int", "value": 'order["order_id"]'},
        {"id": "reason", "type": "str", "value": '"cancelled"'}]
    admin.assert_clean()


@pytest.mark.browser
def test_a_problem_selects_the_element_it_is_about(admin):
    admin.open(MODELER)
    panel = admin.select("Activity_Release")
    panel.get_by_label("Operator").select_option("")
    admin.press("Validate", "problem(s) found; nothing was changed.")
    problem = admin.page.get_by_role("button", name="Activity_Release: unknown service operator")
    expect(problem).to_contain_text("Line ")
    admin.select("Activity_Produce")
    problem.click()
    expect(panel.locator("#prop-id")).to_have_value("Activity_Release")
    admin.assert_clean()


@pytest.mark.browser
def test_admin_inserts_a_user_task_before_produce_cards_and_deploys_it(admin, services):
    admin.open(MODELER)
    insert_user_task_before(admin.page, "Produce cards", "Supervisor approval",
                            "supervisor_approval.schema.json", "supervisor_approval.uischema.json")
    admin.page.screenshot(path="/tmp/cardflow-inserted.png")
    admin.press("Validate", "Valid; Deploy makes a new version.")
    root = etree.fromstring(admin.exported().encode())
    task = root.find(".//bpmn:userTask[@name='Supervisor approval']", NS)
    properties = {p.get("name"): p.get("value") for p in task.iterfind(".//spiffworkflow:property", NS)}
    assert properties == {"formJsonSchemaFilename": "supervisor_approval.schema.json",
                          "formUiSchemaFilename": "supervisor_approval.uischema.json"}
    flows = {f.get("id"): f for f in root.iterfind(".//bpmn:sequenceFlow", NS)}
    (incoming,) = [f for f in flows.values() if f.get("targetRef") == task.get("id")]
    (outgoing,) = [f for f in flows.values() if f.get("sourceRef") == task.get("id")]
    assert incoming.get("sourceRef") == "Gateway_NextOrCancel"
    assert outgoing.get("targetRef") == "Activity_Produce"
    assert incoming.find("bpmn:conditionExpression", NS).text == 'action == "next"'
    assert engine_check(services, admin.exported()).process_id == PROCESS

    admin.press("Deploy", f"Deployed {PROCESS} version 2.")
    admin.assert_clean()
    admin.open(f"/admin/processes/{PROCESS}/diagram?version=2")
    expect(admin.page.locator(f".djs-element[data-element-id='{task.get('id')}']")).to_be_visible()


@pytest.mark.browser
def test_admin_adds_a_service_task_with_an_operator_and_parameters(admin, services):
    admin.open(MODELER)
    insert_task_before(admin.page, "Release cards", "Release early", "Service task")
    panel = admin.page.locator("#modeler-properties")
    operator = panel.get_by_label("Operator")
    assert sorted(operator.locator("option").all_inner_texts()) == sorted(
        ["Choose an operator", *services.registry.names()])
    operator.select_option("order_release")
    panel.get_by_role("button", name="Add parameter").click()
    for part, value in (("id", "order_id"), ("type", "int"), ("value", 'order["order_id"]')):
        panel.get_by_label(f"Parameter 1 {part}").fill(value)
        panel.get_by_label(f"Parameter 1 {part}").press("Tab")
    panel.get_by_role("button", name="Add parameter").click()
    panel.get_by_role("button", name="Remove parameter 2").click()
    expect(panel.get_by_label("Parameter 2 id")).to_have_count(0)
    with admin.page.expect_download() as download:
        admin.page.get_by_role("button", name="Download XML").click()
    assert download.value.suggested_filename == f"{PROCESS}.bpmn"
    saved = download.value.path().read_text(encoding="utf-8")
    assert saved == admin.exported()

    root = etree.fromstring(saved.encode())
    task = root.find(".//bpmn:serviceTask[@name='Release early']", NS)
    operator = task.find("bpmn:extensionElements/spiffworkflow:serviceTaskOperator", NS)
    assert operator.get("id") == "order_release"
    assert [p.attrib for p in operator.iterfind("spiffworkflow:parameters/spiffworkflow:parameter", NS)] == [
        {"id": "order_id", "type": "int", "value": 'order["order_id"]'}]
    assert engine_check(services, saved).process_id == PROCESS
    admin.assert_clean()
