"""Who may see what: logging in, roles, other operators' orders, spool files, no secret shown."""

from __future__ import annotations

import uuid

import pytest

from engine.db import unit_of_work
from tasks.store import Order
from tests.web.conftest import PASSWORD, csrf_token
from tests.web.console_steps import issue


def test_login_sends_each_role_to_its_start_page(login):
    assert login("op", "operator").get("/").headers["Location"] == "/batch-orders"
    assert login("adm", "admin").get("/").headers["Location"] == "/admin/"
    assert login("aud", "auditor").get("/").headers["Location"] == "/audit/"


def test_wrong_password_and_unknown_user_get_the_same_answer(app, make_user):
    make_user("op", "operator", PASSWORD)
    client = app.test_client()
    answers = []
    for name, password in (("op", "wrong-password"), ("nobody", PASSWORD)):
        token = csrf_token(client.get("/login").get_data(as_text=True))
        response = client.post("/login", data={"name": name, "password": password, "csrf_token": token})
        answers.append((response.status_code, "Unknown user name or wrong password." in response.text))
        assert password not in response.text
    assert answers == [(401, True), (401, True)]
    assert client.get("/batch-orders").status_code == 302


def test_login_refuses_a_foreign_next_url(app, make_user):
    make_user("op", "operator", PASSWORD)
    client = app.test_client()
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post("/login?next=//evil.example/", data={"name": "op", "password": PASSWORD,
                                                               "csrf_token": token})
    assert response.headers["Location"] == "/batch-orders"


def test_anonymous_visitors_are_sent_to_login(app):
    client = app.test_client()
    for url in ("/batch-orders", "/cards/TC-000001", "/spool/order-1/x.png", "/orders/x"):
        response = client.get(url)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login")


@pytest.mark.parametrize("role", ["admin", "auditor"])
def test_admin_and_auditor_get_403_on_operator_pages(login, role, requested_cards):
    owner = login("op")
    instance_id = owner.start()
    user = login(f"{role}1", role)
    assert user.get("/batch-orders").status_code == 403
    assert user.get(f"/orders/{instance_id}").status_code == 403
    assert user.get(f"/orders/{instance_id}/status").status_code == 403
    assert user.post("/batch-orders/start/TempCardsBoProcIssueMultiple", page="/cards").status_code == 403
    page = user.get("/cards/TC-000001")
    assert page.status_code == 200 and "BATCH ORDERS" not in page.text


def test_an_operator_cannot_act_on_another_operators_order(login, services, requested_cards):
    owner = login("op1")
    instance_id = owner.start()
    owner.order_page(instance_id)
    other = login("op2")
    assert other.get(f"/orders/{instance_id}").status_code == 403
    task = services.runtime.ready_task(instance_id)
    response = other.post(f"/orders/{instance_id}/tasks/{task.task_id}", {"action": "cancel"},
                          page="/batch-orders")
    assert response.status_code == 403
    assert services.runtime.ready_task(instance_id).task_id == task.task_id


def test_unknown_order_and_card(login):
    op = login()
    assert op.get("/orders/no-such-order").status_code == 404
    page = op.get("/cards/TC-999999")
    assert page.status_code == 404 and "No card with number TC-999999." in page.text


def test_card_lookup(login, requested_cards):
    auditor = login("aud", "auditor")
    assert auditor.get("/cards?number=TC-000003").headers["Location"] == "/cards/TC-000003"
    assert auditor.get("/cards?number=" + "9" * 41).status_code == 400
    history = auditor.get("/cards/TC-000003").text
    assert "Card requested (demo data)." in history and "<td>demo-data</td>" in history


def test_spool_files_stay_inside_the_spool_folder(login, services, requested_cards):
    op = login()
    instance_id = op.start()
    issue(op, instance_id, [10])
    op.submit(instance_id, {"action": "next"})
    op.order_page(instance_id)
    for url in ("/spool/../secret_key", "/spool/..%2Fsecret_key", "/spool/%2e%2e/ca_passphrase",
                "/spool/%2Fetc%2Fpasswd.png", "/spool/order-1/missing.png", "/spool/notes.txt"):
        response = op.get(url, follow_redirects=True)
        assert response.status_code == 404, url
        assert services.settings.secret_key not in response.text


def test_pages_carry_no_secret_and_forbid_foreign_content(login, services):
    op = login()
    response = op.get("/batch-orders")
    assert services.settings.secret_key not in response.text
    assert services.settings.ca_passphrase not in response.text
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"


def test_logout(login):
    op = login()
    response = op.post("/logout", page="/batch-orders")
    assert response.status_code == 303
    assert op.get("/batch-orders").status_code == 302


def test_a_server_error_shows_a_plain_page(app, login):
    def broken():
        raise RuntimeError("secret detail that must stay in the log")

    app.add_url_rule("/broken", view_func=broken)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = login().get("/broken")
    assert response.status_code == 500
    assert "the failing step saved nothing" in response.text and "secret detail" not in response.text


@pytest.fixture
def spool(services):
    """The spool folder with one real preview of op's order 1, and a PNG and a text file outside it."""
    with unit_of_work(services.sessions) as session:
        session.add_all(Order(instance_id=str(uuid.uuid4()), process_id="TempCardsBoProcIssueMultiple",
                              process_version=1, options_name="TempCardsScriptOptions", options_version=1,
                              options={}, status="open", created_by="op") for _ in range(2))
    folder = services.settings.spool_path
    (folder / "order-1").mkdir(parents=True, exist_ok=True)
    (folder / "order-1" / "card.png").write_bytes(b"\x89PNG preview")
    outside = services.settings.instance_path / "outside"
    outside.mkdir()
    (outside / "photo.png").write_bytes(b"\x89PNG not a spooled card")
    (outside / "notes.txt").write_bytes(b"secret notes, not a spooled card")
    return folder, outside


@pytest.mark.parametrize(("link", "target"), [
    ("leak.png", "../outside/notes.txt"),
    ("photo.png", "../outside/photo.png"),
    ("order-2", "../outside"),
    ("order-1/again.png", "card.png"),
    ("alias", "order-1"),
])
def test_spool_links_are_not_followed(login, services, spool, link, target):
    folder, _outside = spool
    (folder / link).symlink_to(target)
    op = login()
    with op.get("/spool/order-1/card.png") as preview:
        assert preview.status_code == 200 and preview.data == b"\x89PNG preview"
    for url in (f"/spool/{link}", "/spool/order-2/photo.png", "/spool/alias/card.png"):
        response = op.get(url)
        assert response.status_code == 404, url
        assert b"not a spooled card" not in response.data
        assert services.settings.secret_key not in response.text


@pytest.mark.parametrize("page", ["\u00b2", "\u0661", "\uff11", "1\u00b2", "99999999999999999999", "-1", "0",
                                  "1e3", " 1", "", "%00"])
def test_a_page_number_that_is_not_plain_digits_shows_the_first_page(login, page):
    op = login()
    instance_id = op.start()
    assert op.submit(instance_id, {"action": "cancel"}).status_code == 303
    op.order_page(instance_id)
    response = op.get(f"/orders/{instance_id}", query_string={"page": page})
    assert response.status_code == 200 and "Order cancelled" in response.text
