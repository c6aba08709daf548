"""Console users: creation with hashed passwords, and checking a login."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from engine.store import AuditEvent, User

ROLES = ("operator", "admin", "auditor")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.@-]{2,100}$")
MIN_PASSWORD = 8


class UserError(ValueError):
    """A user cannot be created as asked; the message says why."""


def add_user(session: Session, name: str, role: str, password: str, actor: str) -> User:
    """Create a user; the password is stored only as a salted hash."""
    if not NAME_PATTERN.match(name):
        raise UserError("A user name is 2 to 100 letters, digits or . _ @ -.")
    if role not in ROLES:
        raise UserError(f"Unknown role {role!r}; choose one of {', '.join(ROLES)}.")
    if len(password) < MIN_PASSWORD:
        raise UserError(f"The password must have at least {MIN_PASSWORD} characters.")
    if session.scalar(select(User).where(User.name == name)) is not None:
        raise UserError(f"User {name} already exists.")
    user = User(name=name, role=role, password_hash=generate_password_hash(password))
    session.add(user)
    session.add(AuditEvent(actor=actor, action="user added", detail={"user": name, "role": role}))
    return user


def authenticate(session: Session, name: str, password: str) -> User | None:
    """The user when name and password match, else None (same answer for both mistakes)."""
    user = session.scalar(select(User).where(User.name == name))
    if user is None or not check_password_hash(user.password_hash, password):
        return None
    return user
