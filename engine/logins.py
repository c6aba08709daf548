"""Logging in: one password check on every path, the lockout, and server-side login sessions.

Neither the answer, its time, nor a lockout tells an unknown user name from a known one. A login
session is a row keyed by the sha256 of the cookie's token; it ends at logout, when an admin
changes the user, and after a while unused.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Row, bindparam, delete, select, update
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.security import check_password_hash, generate_password_hash

from engine.db import unit_of_work
from engine.store import LoginSession, User, utcnow
from engine.users import NAME_PATTERN, audit, aware, locked_until

# Checked when the name is unknown, made with the same method as every real hash, so that an
# unknown name is answered exactly as slowly as a known one.
_DUMMY_HASH = generate_password_hash(secrets.token_urlsafe(16))
# last_seen_at is written at most this often: not one write per page.
SEEN_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class LockoutPolicy:
    """After ``max_failures`` failed logins in a row the account is locked for ``lock_minutes``;
    a login session unused for ``idle_minutes`` ends."""

    max_failures: int = 5
    lock_minutes: int = 15
    idle_minutes: int = 120


@dataclass(frozen=True)
class LoginResult:
    """What a login attempt came to: a session token on success, the lock's end when locked."""

    token: str | None = None
    user_id: int | None = None
    name: str = ""
    role: str = ""
    locked_until: datetime | None = None


class UnknownNames:
    """Failure counts of names that are no user, in memory and bounded, so that guessing an unknown
    name locks it exactly as a real account: a lockout must not tell which names exist."""

    def __init__(self, size: int = 10_000):
        self._size = size
        self._entries: OrderedDict[str, tuple[int, datetime | None]] = OrderedDict()
        self._lock = threading.Lock()

    def fail(self, name: str, policy: LockoutPolicy, now: datetime) -> datetime | None:
        """Count a failed login for ``name``; when its lock ends if it is (or becomes) locked."""
        with self._lock:
            failures, until = self._entries.pop(name, (0, None))
            if until is not None and until > now:
                self._entries[name] = (failures, until)
                return until
            failures = 1 if until is not None else failures + 1
            until = now + timedelta(minutes=policy.lock_minutes) if failures >= policy.max_failures else None
            self._entries[name] = (failures, until)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
            return until


def authenticate(sessions: sessionmaker[Session], name: str, password: str, policy: LockoutPolicy,
                 unknown: UnknownNames | None = None) -> LoginResult:
    """Check a login and record it (audit, failure count, lock); on success open a login session.

    Exactly one password hash is checked on every path, outside any transaction, so neither the
    answer nor its time tells an unknown name from a known one, and no lock is held while hashing.
    Unknown names are answered as a wrong password and, with ``unknown``, lock like accounts.
    """
    with unit_of_work(sessions) as session:
        user = session.scalar(select(User).where(User.name == name)) if NAME_PATTERN.match(name) else None
        stored_hash = user.password_hash if user else _DUMMY_HASH
    matches = check_password_hash(stored_hash, password)
    with unit_of_work(sessions) as session:
        if user is None:
            audit(session, name or "(no name)", "login failed", reason="unknown user")
            until = unknown.fail(name, policy, utcnow()) if unknown is not None else None
            return LoginResult(locked_until=until)
        return _record_login(session, user.id, matches, stored_hash, policy)


def _record_login(session: Session, user_id: int, matches: bool, checked_hash: str,
                  policy: LockoutPolicy) -> LoginResult:
    """Count a failure (locking at the limit) or open a session for the user, re-read and locked."""
    user = session.scalar(select(User).where(User.id == user_id).with_for_update())
    now = utcnow()
    if user is None:
        return LoginResult()
    until = locked_until(user, now)
    if until is not None:
        audit(session, user.name, "login failed", reason="locked")
        return LoginResult(locked_until=until)
    # A password changed since it was read does not count as matching.
    if matches and checked_hash == user.password_hash and not user.disabled:
        user.failed_logins, user.locked_until = 0, None
        token = secrets.token_urlsafe(32)
        # Sessions nobody logged out of go once they are idle too long: the table stays small.
        session.execute(delete(LoginSession).where(
            LoginSession.last_seen_at < now - timedelta(minutes=policy.idle_minutes)))
        session.add(LoginSession(token_hash=_token_hash(token), user_id=user.id, created_at=now,
                                 last_seen_at=now))
        audit(session, user.name, "login")
        return LoginResult(token, user.id, user.name, user.role)
    if user.locked_until is not None:  # an old lock ran out: count afresh
        user.failed_logins, user.locked_until = 0, None
    user.failed_logins += 1
    audit(session, user.name, "login failed", reason="disabled" if user.disabled else "wrong password",
          failures=user.failed_logins)
    if user.failed_logins < policy.max_failures:
        return LoginResult()
    user.locked_until = now + timedelta(minutes=policy.lock_minutes)
    audit(session, user.name, "login locked", until=user.locked_until.isoformat(),
          failures=user.failed_logins)
    return LoginResult(locked_until=user.locked_until)


def _token_hash(token: str) -> str:
    """What the database keeps of a login token: its sha256, so a database copy opens no session."""
    return hashlib.sha256(token.encode()).hexdigest()


def session_user(session: Session, token: str, policy: LockoutPolicy | None = None) -> User | None:
    """The enabled user whose login session ``token`` opened, or None (logged out, ended, disabled,
    or unused for longer than the policy's idle time)."""
    policy = policy or LockoutPolicy()
    row = session.get(LoginSession, _token_hash(token))
    if row is None:
        return None
    now = utcnow()
    seen = aware(row.last_seen_at)
    if seen < now - timedelta(minutes=policy.idle_minutes):
        session.delete(row)
        return None
    if seen < now - SEEN_EVERY:
        session.execute(update(LoginSession).where(LoginSession.token_hash == row.token_hash)
                        .values(last_seen_at=now))
    user = session.get(User, row.user_id)
    return user if user is not None and not user.disabled else None


def seen_user(session: Session, token: str, policy: LockoutPolicy | None = None) -> tuple[Row | None, bool]:
    """What session_user answers, without writing: (the user's id, name and role, or None; False);
    or (None, True) when the login session's row must be written first (its last visit is older
    than SEEN_EVERY, or it ended unused): then session_user answers. Pages read the user in a
    read-only transaction, so at most one a minute per login takes a write lock."""
    policy = policy or LockoutPolicy()
    found = session.execute(_SEEN, {"token_hash": _token_hash(token)}).first()
    if found is None:
        return None, False
    if aware(found.last_seen_at) < utcnow() - min(SEEN_EVERY, timedelta(minutes=policy.idle_minutes)):
        return None, True
    return (None if found.disabled else found), False


# Read on every page, so built once: the user's columns and the login session's last visit.
_SEEN = (select(User.id, User.name, User.role, User.disabled, LoginSession.last_seen_at)
         .join(LoginSession, LoginSession.user_id == User.id)
         .where(LoginSession.token_hash == bindparam("token_hash")))


def close_session(session: Session, token: str, actor: str) -> None:
    """Log out: the token's session row goes, so a copy of the cookie is worthless from now on."""
    if session.execute(delete(LoginSession).where(LoginSession.token_hash == _token_hash(token))).rowcount:
        audit(session, actor, "logout")
