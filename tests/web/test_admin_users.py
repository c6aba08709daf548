"""The admin's Users page: list, add, disable and enable, reset a password, change a role, unlock;
bad input shows why next to its form and changes nothing; no password is ever shown."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from engine.db import unit_of_work
from engine.logins import LockoutPolicy, authenticate
from engine.store import AuditEvent, User
from tests.web.conftest import PASSWORD

PAGE = "/admin/users"


@pytest.fixture
def admin(login, make_user):
    """An admin on the Users page, with operator ``op`` to manage."""
    console = login("adm", "admin")
    make_user("op", "operator", PASSWORD)
    return console


def stored(services, name: str) -> User | None:
    """The user row."""
    with unit_of_work(services.sessions) as session:
        return session.scalar(select(User).where(User.name == name))


def row(page: str, name: str) -> str:
    """The table row of user ``name``."""
    match = re.search(rf"<tr>\s*<td>{re.escape(name)}(?:(?!</tr>).)*</tr>", page, re.S)
    assert match, f"no row for {name}"
    return match.group(0)


def test_the_page_lists_every_user_with_role_state_and_failures(admin, services):
    with unit_of_work(services.sessions) as session:
        session.scalar(select(User).where(User.name == "op")).disabled = True
    for _ in range(2):
        authenticate(services.sessions, "adm", "wrong", LockoutPolicy(max_failures=9))
    page = admin.get(PAGE)
    assert page.status_code == 200
    assert "<td>operator</td>" in row(page.text, "op") and "<td>disabled</td>" in row(page.text, "op")
    assert "<td>active</td>" in row(page.text, "adm") and "<td>2</td>" in row(page.text, "adm")
    assert 'aria-current="page">Users</a>' in page.text


def test_add_a_user(admin, services):
    fields = {"name": "newbie", "role": "auditor", "password": "a-fresh-password-1"}
    response = admin.post(f"{PAGE}/new", fields, page=PAGE)
    assert response.status_code == 303 and response.headers["Location"] == PAGE
    page = admin.get(PAGE).text
    assert "User newbie (auditor) added." in page and "a-fresh-password-1" not in page
    assert stored(services, "newbie").role == "auditor"


@pytest.mark.parametrize(("fields", "reason"), [
    ({"name": "newbie", "role": "auditor", "password": "short-1"}, "at least 12 characters"),
    ({"name": "newbie", "role": "auditor", "password": "newbie-pass-1"}, "must not contain the user name"),
    ({"name": "newbie", "role": "root", "password": "a-fresh-password-1"}, "Unknown role &#39;root&#39;"),
    ({"name": "no spaces", "role": "auditor", "password": "a-fresh-password-1"}, "A user name is 2 to 100"),
    ({"name": "op", "role": "auditor", "password": "a-fresh-password-1"}, "User op already exists."),
])
def test_a_refused_user_is_not_added_and_the_reason_is_next_to_the_form(admin, services, fields, reason):
    response = admin.post(f"{PAGE}/new", fields, page=PAGE)
    assert response.status_code == 400
    add_form = response.text[response.text.index("<h2>Add a user</h2>"):]
    assert reason in add_form and fields["password"] not in response.text
    if fields["name"] != "op":
        assert stored(services, fields["name"]) is None
        assert f'value="{fields["name"]}"' in add_form


def test_disable_and_enable(admin, services):
    assert admin.post(f"{PAGE}/op/disable", page=PAGE).status_code == 303
    assert stored(services, "op").disabled
    assert "User op is disabled; their sessions have ended." in admin.get(PAGE).text
    assert admin.post(f"{PAGE}/op/enable", page=PAGE).status_code == 303
    assert not stored(services, "op").disabled


def test_reset_a_password(admin, services):
    old_hash = stored(services, "op").password_hash
    weak = admin.post(f"{PAGE}/op/password", {"password": "password1234"}, page=PAGE)
    assert weak.status_code == 400 and "most common ones" in row(weak.text, "op")
    assert stored(services, "op").password_hash == old_hash
    reset = admin.post(f"{PAGE}/op/password", {"password": "a-brand-new-password"}, page=PAGE)
    assert reset.status_code == 303
    assert authenticate(services.sessions, "op", "a-brand-new-password", LockoutPolicy()).token
    assert "a-brand-new-password" not in admin.get(PAGE).text


def test_change_a_role(admin, services):
    assert admin.post(f"{PAGE}/op/role", {"role": "auditor"}, page=PAGE).status_code == 303
    assert stored(services, "op").role == "auditor"
    bad = admin.post(f"{PAGE}/op/role", {"role": "superuser"}, page=PAGE)
    assert bad.status_code == 400 and "Unknown role" in row(bad.text, "op")
    assert stored(services, "op").role == "auditor"


def test_unlock_a_locked_user(admin, services):
    for _ in range(5):
        authenticate(services.sessions, "op", "wrong", LockoutPolicy())
    assert "locked until" in row(admin.get(PAGE).text, "op")
    assert admin.post(f"{PAGE}/op/unlock", page=PAGE).status_code == 303
    assert "<td>active</td>" in row(admin.get(PAGE).text, "op")
    assert authenticate(services.sessions, "op", PASSWORD, LockoutPolicy()).token


def test_an_admin_cannot_disable_or_demote_their_own_account(admin, services):
    page = admin.get(PAGE).text
    assert "admin.user_disable" not in page and f"{PAGE}/adm/disable" not in page
    for action, fields, reason in (("disable", {}, "You cannot disable your own account"),
                                   ("role", {"role": "operator"}, "You cannot change your own role")):
        response = admin.post(f"{PAGE}/adm/{action}", fields, page=PAGE)
        assert response.status_code == 400 and reason in row(response.text, "adm")
    assert (stored(services, "adm").disabled, stored(services, "adm").role) == (False, "admin")


def test_a_change_to_an_unknown_user_says_so(admin):
    response = admin.post(f"{PAGE}/ghost/disable", page=PAGE)
    assert response.status_code == 400 and "There is no user &#39;ghost&#39;." in response.text


def test_changes_are_audited_with_the_admin_as_actor(admin, services):
    admin.post(f"{PAGE}/op/disable", page=PAGE)
    admin.post(f"{PAGE}/op/enable", page=PAGE)
    with unit_of_work(services.sessions) as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.action.like("user %")))
        changes = [(event.actor, event.action) for event in events][-2:]
    assert changes == [("adm", "user disabled"), ("adm", "user enabled")]


def test_forms_without_the_csrf_token_change_nothing(admin, services):
    response = admin.client.post(f"{PAGE}/op/disable")
    assert response.status_code == 400 and "security token" in response.text
    assert not stored(services, "op").disabled
