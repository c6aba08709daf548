"""Console users: the password policy, adding and changing users, locks. Every change is an audit
event naming who made it. Logging in is ``engine.logins``.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from engine.store import AuditEvent, LoginSession, User, utcnow

ROLES = ("operator", "admin", "auditor")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.@-]{2,100}$")
MIN_PASSWORD = 12
MAX_PASSWORD = 256
# Passwords long and mixed enough for the other rules, yet first in every guessing list.
COMMON_PASSWORDS = frozenset({
    "password1234", "password12345", "password123!", "passw0rd1234", "p@ssw0rd1234", "123456789abc",
    "qwerty123456", "qwertyuiop12", "qwertyuiop123", "1q2w3e4r5t6y", "1qaz2wsx3edc", "abc123456789",
    "abcd12345678", "iloveyou1234", "welcome12345", "welcome@1234", "letmein12345", "changeme1234",
    "administrator1", "admin1234567", "cardflow1234", "trustno11234", "monkey123456", "dragon123456",
})


class UserError(ValueError):
    """A user cannot be created or changed as asked; the message says why. Nothing was changed."""


def password_problem(name: str, password: str) -> str | None:
    """Why ``password`` is not good enough for user ``name``, or None when it is."""
    if len(password) < MIN_PASSWORD:
        return f"The password must have at least {MIN_PASSWORD} characters."
    if len(password) > MAX_PASSWORD:
        return f"The password must have at most {MAX_PASSWORD} characters."
    kinds = {"letter" if c.isalpha() else "digit" if c.isdigit() else "other" for c in password}
    if len(kinds) < 2:
        return ("The password must mix at least two kinds of characters: letters, digits, others "
                "(such as - or !).")
    if name and name.lower() in password.lower():
        return "The password must not contain the user name."
    if password.lower() in COMMON_PASSWORDS:
        return "This password is one of the most common ones; choose another."
    return None


def random_password(name: str) -> str:
    """A random password (16 characters) that satisfies the policy for user ``name``."""
    while True:
        password = secrets.token_urlsafe(12)
        if password_problem(name, password) is None:
            return password


def _check_password(name: str, password: str) -> None:
    """Raise a UserError saying why the password is not good enough, if it is not."""
    problem = password_problem(name, password)
    if problem:
        raise UserError(problem)


def _user(session: Session, name: str) -> User:
    """The user called ``name``, locked for this transaction, or a UserError."""
    user = session.scalar(select(User).where(User.name == name).with_for_update())
    if user is None:
        raise UserError(f"There is no user {name!r}.")
    return user


def audit(session: Session, actor: str, action: str, **detail: object) -> None:
    """Record what ``actor`` did; ``detail`` never holds a password."""
    session.add(AuditEvent(actor=actor[:100], action=action, detail=detail))


def end_sessions(session: Session, user: User) -> None:
    """Log the user out everywhere: their session cookies no longer find a row."""
    session.execute(delete(LoginSession).where(LoginSession.user_id == user.id))


def aware(moment: datetime | None) -> datetime | None:
    """A stored time as UTC (SQLite gives it back without its zone)."""
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def locked_until(user: User, now: datetime | None = None) -> datetime | None:
    """When the user's lock ends, or None when the account is not locked now."""
    until = aware(user.locked_until)
    return until if until is not None and until > (now or utcnow()) else None


def list_users(session: Session) -> list[User]:
    """Every user, by name."""
    return list(session.scalars(select(User).order_by(User.name)))


def add_user(session: Session, name: str, role: str, password: str, actor: str) -> User:
    """Create a user; the password is stored only as a salted hash."""
    if not NAME_PATTERN.match(name):
        raise UserError("A user name is 2 to 100 letters, digits or . _ @ -.")
    if role not in ROLES:
        raise UserError(f"Unknown role {role!r}; choose one of {', '.join(ROLES)}.")
    _check_password(name, password)
    if session.scalar(select(User).where(User.name == name)) is not None:
        raise UserError(f"User {name} already exists.")
    user = User(name=name, role=role, password_hash=generate_password_hash(password),
                password_changed_at=utcnow())
    session.add(user)
    audit(session, actor, "user added", user=name, role=role)
    return user


def disable_user(session: Session, name: str, actor: str) -> User:
    """Stop a user from logging in and end their sessions; the account and its history stay."""
    if name == actor:
        raise UserError("You cannot disable your own account; another admin has to.")
    user = _user(session, name)
    if user.disabled:
        raise UserError(f"User {name} is already disabled; nothing changed.")
    user.disabled = True
    end_sessions(session, user)
    audit(session, actor, "user disabled", user=name)
    return user


def enable_user(session: Session, name: str, actor: str) -> User:
    """Let a disabled user log in again."""
    user = _user(session, name)
    if not user.disabled:
        raise UserError(f"User {name} is not disabled; nothing changed.")
    user.disabled = False
    audit(session, actor, "user enabled", user=name)
    return user


def set_password(session: Session, name: str, password: str, actor: str) -> User:
    """Give the user a new password (a reset); their sessions end, the lock stays as it is."""
    user = _user(session, name)
    _check_password(name, password)
    user.password_hash, user.password_changed_at = generate_password_hash(password), utcnow()
    end_sessions(session, user)
    audit(session, actor, "password reset", user=name)
    return user


def change_role(session: Session, name: str, role: str, actor: str) -> User:
    """Give the user another role; their sessions end so the new role applies at once."""
    if role not in ROLES:
        raise UserError(f"Unknown role {role!r}; choose one of {', '.join(ROLES)}.")
    if name == actor:
        raise UserError("You cannot change your own role; another admin has to.")
    user = _user(session, name)
    if user.role == role:
        raise UserError(f"User {name} already has role {role}; nothing changed.")
    previous, user.role = user.role, role
    end_sessions(session, user)
    audit(session, actor, "role changed", user=name, previous=previous, role=role)
    return user


def unlock_user(session: Session, name: str, actor: str) -> User:
    """End a lockout after failed logins; the count of failures starts again."""
    user = _user(session, name)
    if locked_until(user) is None and not user.failed_logins:
        raise UserError(f"User {name} is not locked and has no failed logins; nothing changed.")
    user.failed_logins, user.locked_until = 0, None
    audit(session, actor, "user unlocked", user=name)
    return user
