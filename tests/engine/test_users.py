"""Console users on a real SQLite database: the password policy, each change audited with its
actor, the login lockout, and the login sessions that changes end."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

import engine.logins
from engine.db import make_engine, make_sessions, unit_of_work
from engine.logins import LockoutPolicy, authenticate, session_user
from engine.store import AuditEvent, Base, LoginSession, User, utcnow
from engine.users import (
    UserError,
    add_user,
    change_role,
    disable_user,
    enable_user,
    password_problem,
    random_password,
    set_password,
    unlock_user,
)

PASSWORD = "correct-horse-battery"
POLICY = LockoutPolicy(max_failures=3, lock_minutes=15)


def open_database(url: str) -> Iterator[sessionmaker[Session]]:
    """Sessions on a fresh database with the engine's tables and users alice (operator), root (admin)."""
    db = make_engine(url)
    Base.metadata.create_all(db)
    factory = make_sessions(db)
    with unit_of_work(factory) as session:
        add_user(session, "alice", "operator", PASSWORD, actor="setup")
        add_user(session, "root", "admin", PASSWORD, actor="setup")
    yield factory
    db.dispose()


@pytest.fixture
def sessions(tmp_path) -> Iterator[sessionmaker[Session]]:
    """The users on a fresh SQLite file."""
    yield from open_database(f"sqlite:///{tmp_path / 'users.db'}")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def both_databases(request, tmp_path) -> Iterator[sessionmaker[Session]]:
    """The users on SQLite, then on the CI PostgreSQL server."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    yield from open_database(url or f"sqlite:///{tmp_path / 'users.db'}")


def change(sessions, action, *args):
    """Run one service function in its own transaction."""
    with unit_of_work(sessions) as session:
        return action(session, *args)


def user(sessions, name: str) -> User:
    """The stored user."""
    with unit_of_work(sessions) as session:
        return session.scalar(select(User).where(User.name == name))


def audit(sessions) -> list[tuple[str, str, dict]]:
    """Every audit event as (actor, action, detail), oldest first."""
    with unit_of_work(sessions) as session:
        events = session.scalars(select(AuditEvent).order_by(AuditEvent.id))
        return [(event.actor, event.action, event.detail) for event in events]


def open_sessions(sessions, name: str) -> int:
    """How many login sessions the user has."""
    with unit_of_work(sessions) as session:
        return session.scalar(select(func.count()).select_from(LoginSession).join(User)
                              .where(User.name == name))


@pytest.mark.parametrize(("password", "problem"), [
    ("short-pw-1", "at least 12 characters"),
    ("x" * 257 + "1", "at most 256 characters"),
    ("onlyletterspassword", "at least two kinds of characters"),
    ("123456789012345", "at least two kinds of characters"),
    ("!!!---???___", "at least two kinds of characters"),
    ("ALICE-in-wonderland", "must not contain the user name"),
    ("Password1234", "most common ones"),
    ("qwerty123456", "most common ones"),
])
def test_weak_passwords_are_refused_with_the_reason(password, problem):
    assert problem in password_problem("alice", password)


@pytest.mark.parametrize("password", [PASSWORD, "a-long-password", "correct horse battery", "7Vx2-kq9Lz0p"])
def test_good_passwords_pass_the_policy(password):
    assert password_problem("alice", password) is None


def test_generated_passwords_always_pass_the_policy():
    assert all(password_problem("admin", random_password("admin")) is None for _ in range(500))


def test_a_weak_password_adds_no_user(sessions):
    with pytest.raises(UserError, match="at least 12 characters"):
        change(sessions, add_user, "bob", "operator", "short", "root")
    assert user(sessions, "bob") is None
    assert [event[1] for event in audit(sessions)] == ["user added", "user added"]


def test_changes_are_audited_with_the_actor_and_never_the_password(sessions):
    change(sessions, disable_user, "alice", "root")
    change(sessions, enable_user, "alice", "root")
    change(sessions, set_password, "alice", "a-new-long-password", "root")
    change(sessions, change_role, "alice", "auditor", "root")
    events = audit(sessions)[2:]
    assert [(actor, action) for actor, action, _ in events] == [
        ("root", "user disabled"), ("root", "user enabled"), ("root", "password reset"),
        ("root", "role changed")]
    assert events[-1][2] == {"user": "alice", "previous": "operator", "role": "auditor"}
    assert "a-new-long-password" not in repr(events)
    assert user(sessions, "alice").role == "auditor"


def test_changes_that_change_nothing_are_refused(sessions):
    for action, args, message in ((enable_user, ("alice", "root"), "is not disabled"),
                                  (change_role, ("alice", "operator", "root"), "already has role operator"),
                                  (unlock_user, ("alice", "root"), "is not locked"),
                                  (disable_user, ("nobody", "root"), "There is no user 'nobody'"),
                                  (change_role, ("alice", "boss", "root"), "Unknown role 'boss'")):
        with pytest.raises(UserError, match=message):
            change(sessions, action, *args)


def test_an_admin_cannot_disable_or_demote_their_own_account(sessions):
    with pytest.raises(UserError, match="cannot disable your own account"):
        change(sessions, disable_user, "root", "root")
    with pytest.raises(UserError, match="cannot change your own role"):
        change(sessions, change_role, "root", "operator", "root")
    stored = user(sessions, "root")
    assert (stored.disabled, stored.role) == (False, "admin")


@pytest.mark.parametrize(("action", "args"), [
    (disable_user, ("alice", "root")),
    (set_password, ("alice", "a-new-long-password", "root")),
    (change_role, ("alice", "auditor", "root")),
])
def test_disable_password_reset_and_role_change_end_the_users_sessions(sessions, action, args):
    first = authenticate(sessions, "alice", PASSWORD, POLICY)
    authenticate(sessions, "alice", PASSWORD, POLICY)
    authenticate(sessions, "root", PASSWORD, POLICY)
    assert open_sessions(sessions, "alice") == 2
    change(sessions, action, *args)
    assert open_sessions(sessions, "alice") == 0 and open_sessions(sessions, "root") == 1
    with unit_of_work(sessions) as session:
        assert session_user(session, first.token) is None


def test_a_disabled_user_cannot_log_in_and_is_answered_as_a_wrong_password(sessions):
    change(sessions, disable_user, "alice", "root")
    right, wrong = (authenticate(sessions, "alice", password, POLICY) for password in (PASSWORD, "wrong"))
    assert right == wrong and right.token is None
    change(sessions, enable_user, "alice", "root")
    assert authenticate(sessions, "alice", PASSWORD, POLICY).token


def test_failures_lock_the_account_and_a_lock_refuses_even_the_right_password(both_databases):
    sessions = both_databases
    results = [authenticate(sessions, "alice", f"wrong-{n}", POLICY) for n in range(POLICY.max_failures)]
    assert [r.locked_until is not None for r in results] == [False, False, True]
    until = results[-1].locked_until
    assert timedelta(minutes=14) < until - utcnow() <= timedelta(minutes=15)
    refused = authenticate(sessions, "alice", PASSWORD, POLICY)
    assert refused.token is None and refused.locked_until == until
    # Failures during the lock neither count nor make it longer.
    assert authenticate(sessions, "alice", "wrong", POLICY).locked_until == until
    assert user(sessions, "alice").failed_logins == POLICY.max_failures
    actions = [(actor, action, detail.get("reason")) for actor, action, detail in audit(sessions)[2:]]
    assert actions == ([("alice", "login failed", "wrong password")] * 3 + [("alice", "login locked", None)]
                       + [("alice", "login failed", "locked")] * 2)
    assert "wrong-" not in repr(audit(sessions))


def test_unlock_and_an_expired_lock_let_the_user_in_again(sessions):
    for _ in range(POLICY.max_failures):
        authenticate(sessions, "alice", "wrong", POLICY)
    change(sessions, unlock_user, "alice", "root")
    assert authenticate(sessions, "alice", PASSWORD, POLICY).token
    for _ in range(POLICY.max_failures):
        authenticate(sessions, "alice", "wrong", POLICY)
    with unit_of_work(sessions) as session:
        stored = session.scalar(select(User).where(User.name == "alice"))
        stored.locked_until = utcnow() - timedelta(seconds=1)
    # The lock ran out: failures count afresh from one.
    assert authenticate(sessions, "alice", "wrong", POLICY).locked_until is None
    assert user(sessions, "alice").failed_logins == 1


def test_a_success_resets_the_failure_count(sessions):
    for _ in range(POLICY.max_failures - 1):
        authenticate(sessions, "alice", "wrong", POLICY)
    result = authenticate(sessions, "alice", PASSWORD, POLICY)
    assert (result.name, result.role) == ("alice", "operator")
    assert user(sessions, "alice").failed_logins == 0
    assert authenticate(sessions, "alice", "wrong", POLICY).locked_until is None
    assert audit(sessions)[-2][:2] == ("alice", "login")


def test_unknown_names_count_nothing_and_are_answered_as_a_wrong_password(sessions):
    wrong = authenticate(sessions, "alice", "wrong", POLICY)
    for _ in range(POLICY.max_failures + 2):
        assert authenticate(sessions, "nobody", "wrong", POLICY) == wrong
    with unit_of_work(sessions) as session:
        assert session.scalar(select(func.count()).select_from(User)) == 2
    assert audit(sessions)[-1] == ("nobody", "login failed", {"reason": "unknown user"})


def test_every_login_path_checks_one_hash_of_the_same_method(sessions, monkeypatch):
    """An unknown name used to skip the hash check: answered in 9 ms instead of 164 ms."""
    checked = []
    real_check = engine.logins.check_password_hash

    def counting_check(stored_hash: str, password: str) -> bool:
        """Note the method of the hash checked, then check it."""
        checked.append(stored_hash.split("$", 1)[0])
        return real_check(stored_hash, password)

    monkeypatch.setattr(engine.logins, "check_password_hash", counting_check)
    method = user(sessions, "alice").password_hash.split("$", 1)[0]
    for name, password in (("alice", PASSWORD), ("alice", "wrong"), ("nobody", "wrong"), ("", ""),
                           ("not a valid name!", "x"), ("n" * 500, "x")):
        checked.clear()
        authenticate(sessions, name, password, POLICY)
        assert checked == [method], name


def test_racing_guesses_lose_no_failure_and_lock_once(both_databases):
    sessions, racers = both_databases, 6
    start = threading.Barrier(racers)

    def guess(_number: int):
        """One wrong password, sent when every racer is ready."""
        start.wait()
        return authenticate(sessions, "alice", "wrong", POLICY)

    with ThreadPoolExecutor(racers) as pool:
        results = list(pool.map(guess, range(racers)))
    assert sum(result.locked_until is not None for result in results) == racers - POLICY.max_failures + 1
    assert user(sessions, "alice").failed_logins == POLICY.max_failures
    assert [action for _, action, _ in audit(sessions)].count("login locked") == 1


def test_a_login_session_unused_too_long_ends(sessions):
    policy = LockoutPolicy(idle_minutes=30)
    result = authenticate(sessions, "alice", PASSWORD, policy)
    with unit_of_work(sessions) as session:
        assert session_user(session, result.token, policy).name == "alice"
        row = session.scalars(select(LoginSession)).one()
        row.last_seen_at = utcnow() - timedelta(minutes=31)
    with unit_of_work(sessions) as session:
        assert session_user(session, result.token, policy) is None
        assert session.scalars(select(LoginSession)).all() == []


def test_a_login_clears_sessions_left_idle_by_others(sessions):
    policy = LockoutPolicy(idle_minutes=30)
    stale = authenticate(sessions, "alice", PASSWORD, policy)
    with unit_of_work(sessions) as session:
        session.scalars(select(LoginSession)).one().last_seen_at = utcnow() - timedelta(hours=3)
    fresh = authenticate(sessions, "root", PASSWORD, policy)
    with unit_of_work(sessions) as session:
        assert session_user(session, stale.token, policy) is None
        assert session_user(session, fresh.token, policy).name == "root"
        assert len(session.scalars(select(LoginSession)).all()) == 1
