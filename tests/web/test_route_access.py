"""Who may call every route of the console, as one table.

ACCESS has a row for every endpoint and method of the app; a new route without a row fails
``test_every_route_has_a_row``. Each endpoint is then requested as each role (anonymous too):
anonymous visitors are sent to the login page, a role not in the row gets 403, an allowed role
gets the page (or a 4xx about the harmless request itself), never a 5xx.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask

from tests.web.conftest import PASSWORD, csrf_token

ANONYMOUS, OPERATOR, ADMIN, AUDITOR = "anonymous", "operator", "admin", "auditor"
ROLES = (ANONYMOUS, OPERATOR, ADMIN, AUDITOR)
ANYONE = frozenset(ROLES)
LOGGED_IN = frozenset({OPERATOR, ADMIN, AUDITOR})
OPERATORS = frozenset({OPERATOR})
ADMINS = frozenset({ADMIN})
AUDITORS = frozenset({AUDITOR})

# endpoint -> method -> the roles that may call it. Add a row with every new route.
ACCESS: dict[str, dict[str, frozenset[str]]] = {
    "auth.index": {"GET": LOGGED_IN},
    "auth.login": {"GET": ANYONE, "POST": ANYONE},
    "auth.logout": {"POST": LOGGED_IN},
    "cards.lookup": {"GET": LOGGED_IN},
    "cards.history": {"GET": LOGGED_IN},
    "cards.spool_file": {"GET": LOGGED_IN},
    "cards.start_process": {"POST": OPERATORS},
    "bpmn_assets.asset": {"GET": LOGGED_IN},
    "batch_orders.index": {"GET": OPERATORS},
    "batch_orders.start": {"POST": OPERATORS},
    "batch_orders.quick_start": {"POST": OPERATORS},
    "batch_orders.order": {"GET": OPERATORS},
    "batch_orders.status": {"GET": OPERATORS},
    "batch_orders.submit_task": {"POST": OPERATORS},
    "batch_orders.retry": {"POST": OPERATORS},
    "batch_orders.cancel": {"POST": OPERATORS},
    "batch_orders.discard": {"POST": OPERATORS},
    "admin.index": {"GET": ADMINS},
    "admin.upload": {"POST": ADMINS},
    "admin.source": {"GET": ADMINS},
    "admin.diff": {"GET": ADMINS},
    "admin.diagram": {"GET": ADMINS},
    "admin.roll_back": {"POST": ADMINS},
    "admin.modeler": {"GET": ADMINS},
    "admin.process_xml": {"GET": ADMINS, "POST": ADMINS},
    "admin.process_check_json": {"POST": ADMINS},
    "admin.process_deploy_json": {"POST": ADMINS},
    "admin.form_new": {"GET": ADMINS, "POST": ADMINS},
    "admin.form_edit": {"GET": ADMINS, "POST": ADMINS},
    "admin.form_preview": {"POST": ADMINS},
    "admin.options": {"GET": ADMINS, "POST": ADMINS},
    "admin.users": {"GET": ADMINS},
    "admin.user_add": {"POST": ADMINS},
    "admin.user_disable": {"POST": ADMINS},
    "admin.user_enable": {"POST": ADMINS},
    "admin.user_password": {"POST": ADMINS},
    "admin.user_role": {"POST": ADMINS},
    "admin.user_unlock": {"POST": ADMINS},
    "admin.stations": {"GET": ADMINS},
    "admin.station_pause": {"POST": ADMINS},
    "admin.station_resume": {"POST": ADMINS},
    "audit.trail": {"GET": AUDITORS},
    "audit.export_csv": {"GET": AUDITORS},
    "audit.export_json": {"GET": AUDITORS},
    "audit.orders": {"GET": AUDITORS},
    "audit.order": {"GET": AUDITORS},
    "health.healthz": {"GET": ANYONE},
    "health.metrics": {"GET": ANYONE},
    # What relying parties fetch (CA certificate, CRL, OCSP): public, no login (docs/PKI.md).
    "pki.ca_certificate": {"GET": ANYONE},
    "pki.crl": {"GET": ANYONE},
    "pki.ocsp_post": {"POST": ANYONE},
    "pki.ocsp_get": {"GET": ANYONE},
    "search.index": {"GET": LOGGED_IN},
    "search.holder": {"GET": LOGGED_IN},
    "pin_letters.print_letter": {"POST": OPERATORS},
}
# Values for the URL's variables: real where a page needs one, else names of nothing.
SAMPLES = {"instance_id": "no-such-order", "task_id": "no-such-task", "number": "TC-000001",
           "name": "no-such-name", "process_id": "TempCardsBoProcIssueMultiple", "kind": "process",
           "version": "1", "filename": "console.css", "order_id": "1", "encoded": "MAA=",
           "holder_id": "999999"}
# Logging out ends the client's login, so it goes last.
LAST = "auth.logout"


def routes(app: Flask) -> set[tuple[str, str]]:
    """Every (endpoint, method) the app answers, static files aside."""
    return {(rule.endpoint, method) for rule in app.url_map.iter_rules() if rule.endpoint != "static"
            for method in rule.methods - {"HEAD", "OPTIONS"}}


def test_every_route_has_a_row(app):
    rows = {(endpoint, method) for endpoint, methods in ACCESS.items() for method in methods}
    assert sorted(routes(app) - rows) == [], "add these routes to ACCESS"
    assert sorted(rows - routes(app)) == [], "these rows name routes that no longer exist"


def sent_to_log_in(response) -> bool:
    """A redirect to the login page."""
    return response.status_code in (302, 303) and urlsplit(response.headers["Location"]).path == "/login"


def asked_to_log_in(response) -> bool:
    """The login manager's answer to a visitor it does not know: the login page, to come back after."""
    return sent_to_log_in(response) and "next" in parse_qs(urlsplit(response.headers["Location"]).query)


def client_as(app: Flask, make_user, role: str):
    """A test client, logged in as a new user of ``role`` unless anonymous."""
    client = app.test_client()
    if role != ANONYMOUS:
        make_user(f"{role}-user", role, PASSWORD)
        token = csrf_token(client.get("/login").get_data(as_text=True))
        fields = {"name": f"{role}-user", "password": PASSWORD, "csrf_token": token}
        assert client.post("/login", data=fields).status_code == 303
    return client


@pytest.mark.parametrize("role", ROLES)
def test_each_role_reaches_exactly_its_routes(app, make_user, role):
    client = client_as(app, make_user, role)
    urls = {rule.endpoint: rule for rule in app.url_map.iter_rules()}
    wrong = []
    for endpoint in sorted(ACCESS, key=lambda name: name == LAST):
        rule = urls[endpoint]
        with app.test_request_context():
            url = app.url_for(endpoint, **{arg: SAMPLES[arg] for arg in rule.arguments})
        for method, allowed in ACCESS[endpoint].items():
            if method == "GET":
                response = client.get(url)
            else:
                token = csrf_token(client.get("/login").get_data(as_text=True))
                response = client.post(url, data={"csrf_token": token})
            response.close()
            if not as_expected(response, role, allowed):
                wrong.append(f"{method} {url}: {response.status_code} {response.headers.get('Location', '')}")
    assert not wrong, f"as {role}:\n" + "\n".join(wrong)


def as_expected(response, role: str, allowed: frozenset[str]) -> bool:
    """Allowed: served (or a 4xx about the request), never 403, a 5xx or the login page; refused:
    anonymous visitors are sent to log in, logged-in users get 403."""
    if role in allowed:
        return response.status_code < 500 and response.status_code != 403 and not asked_to_log_in(response)
    return sent_to_log_in(response) if role == ANONYMOUS else response.status_code == 403
