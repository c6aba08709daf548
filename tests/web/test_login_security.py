"""Attacks on the login, each as the attacker would try it: guessing passwords, telling names
apart, redirecting off-site after login, replaying a cookie after logout."""

from __future__ import annotations

import re
from dataclasses import replace
from urllib.parse import urlencode

import pytest
from sqlalchemy import select

from engine.config import Settings
from engine.db import unit_of_work
from engine.store import AuditEvent
from engine.users import change_role, disable_user, set_password, unlock_user
from engine.web.app import create_app
from tests.web.conftest import PASSWORD, csrf_token

LOCKED = re.compile(r"This account is locked after too many failed logins, until "
                    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\.")


def attempt(client, name: str, password: str, url: str = "/login"):
    """Post the login form as a browser does, with the page's CSRF token."""
    token = csrf_token(client.get("/login").get_data(as_text=True))
    return client.post(url, data={"name": name, "password": password, "csrf_token": token})


def actions(services) -> list[tuple[str, str]]:
    """(actor, action) of every login audit event, oldest first."""
    with unit_of_work(services.sessions) as session:
        query = select(AuditEvent).where(AuditEvent.action.like("log%")).order_by(AuditEvent.id)
        return [(event.actor, event.action) for event in session.scalars(query)]


def test_guessing_passwords_locks_the_account_until_an_admin_unlocks_it(app, services, make_user):
    make_user("op", "operator", PASSWORD)
    client = app.test_client()
    answers = [attempt(client, "op", f"guess-{n}") for n in range(40)]
    assert [a.status_code for a in answers[:5]] == [401, 401, 401, 401, 429]
    assert all(a.status_code == 429 and LOCKED.search(a.text) for a in answers[4:])
    right = attempt(client, "op", PASSWORD)
    assert right.status_code == 429 and LOCKED.search(right.text)
    assert client.get("/batch-orders").status_code == 302
    failed, locked = ("op", "login failed"), ("op", "login locked")
    assert actions(services) == [failed] * 5 + [locked] + [failed] * 36
    with unit_of_work(services.sessions) as session:
        unlock_user(session, "op", actor="adm")
    assert attempt(client, "op", PASSWORD).status_code == 303
    assert client.get("/batch-orders").status_code == 200
    assert actions(services)[-1] == ("op", "login")


def test_the_lockout_follows_the_settings(services, make_user):
    strict = replace(services.settings, login_max_failures=2, login_lock_minutes=1)
    app = create_app(services=replace(services, settings=strict))
    make_user("op", "operator", PASSWORD)
    client = app.test_client()
    assert [attempt(client, "op", "guess").status_code for _ in range(2)] == [401, 429]


def test_a_success_resets_the_count_of_failures(app, make_user):
    make_user("op", "operator", PASSWORD)
    client = app.test_client()
    for _ in range(4):
        assert attempt(client, "op", "guess").status_code == 401
    assert attempt(client, "op", PASSWORD).status_code == 303
    client.post("/logout", data={"csrf_token": csrf_token(client.get("/batch-orders").text)})
    assert [attempt(client, "op", "guess").status_code for _ in range(4)] == [401] * 4


def test_an_unknown_name_is_answered_exactly_as_a_wrong_password_and_locks_alike(app, make_user):
    make_user("op", "operator", PASSWORD)
    client = app.test_client()

    def answer(name: str) -> tuple[int, str]:
        """The status and the page for a wrong password, with the token, name and time blanked."""
        response = attempt(client, name, "guess")
        page = response.get_data(as_text=True).replace(csrf_token(response.text), "TOKEN")
        page = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", "TIME", page)
        return response.status_code, page.replace(f'value="{name}"', 'value="NAME"')

    # The lock must not tell a real name from an invented one either (it did: only real ones locked).
    known = [answer("op") for _ in range(7)]
    unknown = [answer("xy") for _ in range(7)]
    assert known == unknown
    assert [status for status, _ in known] == [401] * 4 + [429] * 3
    assert "Unknown user name or wrong password." in known[0][1] and "is locked" in known[-1][1]


@pytest.mark.parametrize("hostile", [
    "/%09/evil.example", "/\t/evil.example", "/\r\nSet-Cookie: x=1", "/\n/evil.example", "//evil.example",
    "///evil.example", "/\\evil.example", "\\\\evil.example", "https:evil.example", "https://evil.example/",
    "javascript:alert(1)", "/%2F%2Fevil.example", "/%5Cevil.example", "/%2f/evil.example", "evil.example",
    "/\u2028/evil.example", "/\uff0f/evil.example", "/\x00/evil", "/ /evil.example", "",
])
def test_a_hostile_next_goes_to_the_home_page(app, make_user, hostile):
    make_user("op", "operator", PASSWORD)
    response = attempt(app.test_client(), "op", PASSWORD, url="/login?" + urlencode({"next": hostile}))
    assert response.status_code == 303 and response.headers["Location"] == "/batch-orders"


@pytest.mark.parametrize("target", ["/cards/TC-000001", "/orders/abc?page=2", "/cards?number=TC-1"])
def test_a_same_site_next_is_followed(app, make_user, target):
    make_user("op", "operator", PASSWORD)
    response = attempt(app.test_client(), "op", PASSWORD, url="/login?" + urlencode({"next": target}))
    assert response.status_code == 303 and response.headers["Location"] == target


def test_a_cookie_copied_before_logout_is_worthless_after_it(login, app):
    op = login()
    copied = op.client.get_cookie("session").value
    replay = app.test_client()
    replay.set_cookie("session", copied)
    assert replay.get("/batch-orders").status_code == 200
    assert op.post("/logout", page="/batch-orders").status_code == 303
    replay = app.test_client()
    replay.set_cookie("session", copied)
    response = replay.get("/batch-orders")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


@pytest.mark.parametrize(("action", "args"), [
    (disable_user, ("op", "adm")),
    (set_password, ("op", "another-long-password", "adm")),
    (change_role, ("op", "auditor", "adm")),
])
def test_disabling_resetting_the_password_or_changing_the_role_logs_out(login, services, action, args):
    op = login()
    assert op.get("/batch-orders").status_code == 200
    with unit_of_work(services.sessions) as session:
        action(session, *args)
    response = op.get("/batch-orders")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def session_cookie(response) -> set[str]:
    """The attributes of the session cookie the response sets."""
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("session="))
    return {part.strip() for part in cookie.split(";")[1:]}


def test_the_session_cookie_is_secure_httponly_and_lax(app, make_user):
    make_user("op", "operator", PASSWORD)
    response = attempt(app.test_client(), "op", PASSWORD)
    assert {"Secure", "HttpOnly", "SameSite=Lax"} <= session_cookie(response)


def test_secure_cookies_can_be_turned_off_for_plain_http(services, make_user):
    assert Settings.from_env({}).secure_cookies
    settings = Settings.from_env({"CARDFLOW_SECURE_COOKIES": "off"})
    assert not settings.secure_cookies
    with pytest.raises(ValueError, match="CARDFLOW_SECURE_COOKIES must be"):
        Settings.from_env({"CARDFLOW_SECURE_COOKIES": "maybe"})
    app = create_app(services=replace(services, settings=replace(services.settings, secure_cookies=False)))
    make_user("op", "operator", PASSWORD)
    attributes = session_cookie(attempt(app.test_client(), "op", PASSWORD))
    assert "Secure" not in attributes and "HttpOnly" in attributes
