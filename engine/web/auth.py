"""Logging in and out, the logged-in user, and the role check every other blueprint uses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import LoginManager, UserMixin, current_user, login_required, login_user, logout_user
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from engine.db import unit_of_work
from engine.store import User
from engine.web.context import services

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Please log in to see this page."
# A session cookie copied to another browser (other address or agent) is dropped, not trusted.
login_manager.session_protection = "strong"

# Checked against when the user name is unknown, so both failures take the same time.
_DUMMY_HASH = generate_password_hash("not a password")
HOME_BY_ROLE = {"operator": "batch_orders.index", "admin": "admin.index", "auditor": "cards.lookup"}


@dataclass
class LoginUser(UserMixin):
    """The logged-in user as the console knows it: a name and a role, never the password hash."""

    id: str
    name: str
    role: str


@login_manager.user_loader
def load_user(user_id: str) -> LoginUser | None:
    """The session's user, read again on every request so a removed user is logged out."""
    if not user_id.isdigit():
        return None
    with unit_of_work(services().sessions) as session:
        user = session.get(User, int(user_id))
        return LoginUser(str(user.id), user.name, user.role) if user else None


def role_required(*roles: str) -> Callable:
    """Decorate a view: log in first, then 403 unless the user has one of ``roles``."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        @login_required
        def wrapped(*args: Any, **kwargs: Any):
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorate


def home_url() -> str:
    """Where a logged-in user starts: the page of their role."""
    return url_for(HOME_BY_ROLE.get(current_user.role, "cards.lookup"))


@bp.route("/")
def index():
    """Send visitors to their start page, or to the login page."""
    if current_user.is_authenticated:
        return redirect(home_url())
    return redirect(url_for("auth.login"))


@bp.route("/login", methods=("GET", "POST"))
def login():
    """Check the name and password; an unknown name and a wrong password get the same answer."""
    if request.method == "GET":
        return render_template("login.html", name="")
    name = request.form.get("name", "").strip()
    password = request.form.get("password", "")
    with unit_of_work(services().sessions) as session:
        user = session.scalar(select(User).where(User.name == name)) if name else None
        found = LoginUser(str(user.id), user.name, user.role) if user else None
        stored_hash = user.password_hash if user else _DUMMY_HASH
    if found is None or not check_password_hash(stored_hash, password):
        flash("Unknown user name or wrong password.", "error")
        return render_template("login.html", name=name), 401
    login_user(found)
    target = request.args.get("next", "")
    # Only paths on this site: an absolute or scheme-relative "next" would be an open redirect.
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return redirect(target, code=303)
    return redirect(home_url(), code=303)


@bp.route("/logout", methods=("POST",))
def logout():
    """Forget the logged-in user."""
    logout_user()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"), code=303)
