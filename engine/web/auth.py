"""Logging in and out, the logged-in user, and the checks every other blueprint uses: the role
check, and who may see an order (its pages, card previews and PDFs).

A login is kept on the server: the Flask session holds a random token whose sha256 is a
``LoginSession`` row, and every request looks the row up, so logging out (or an admin disabling
the user, resetting the password or changing the role) ends the session for every copy of the cookie.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any
from urllib.parse import unquote, urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import LoginManager, UserMixin, current_user, login_required, login_user, logout_user

from engine.db import read_only, unit_of_work
from engine.logins import LockoutPolicy, UnknownNames, authenticate, close_session, seen_user, session_user
from engine.web.context import services

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Please log in to see this page."
# A session cookie copied to another browser (other address or agent) is dropped, not trusted.
login_manager.session_protection = "strong"

HOME_BY_ROLE = {"operator": "batch_orders.index", "admin": "admin.index", "auditor": "audit.trail"}
# Roles that read every order; anyone else sees only the orders they started.
ORDER_READERS = ("auditor",)
FAILED = "Unknown user name or wrong password."
LOCKED = ("This account is locked after too many failed logins, until {until:%Y-%m-%d %H:%M:%S} UTC. "
          "Try again then, or ask an admin to unlock it.")


@dataclass
class LoginUser(UserMixin):
    """The logged-in user as the console knows it: never the password hash.

    Flask-Login keeps ``get_id()`` in the session: here that is the login session's token.
    """

    token: str
    user_id: int
    name: str
    role: str

    def get_id(self) -> str:
        """The login session's token, which Flask-Login stores in the session cookie."""
        return self.token


@login_manager.user_loader
def load_user(token: str) -> LoginUser | None:
    """The user of the session's login token, read on every request: an ended session logs out.

    Read without a write lock; the visit is recorded (or the idle session ended) at most once a minute.
    """
    sessions, policy = services().sessions, _lockout_policy()
    with read_only(sessions) as session:
        user, stale = seen_user(session, token, policy)
    if stale:
        with unit_of_work(sessions) as session:
            user = session_user(session, token, policy)
    return LoginUser(token, user.id, user.name, user.role) if user else None


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


def may_see_order(user: LoginUser, owner: str) -> bool:
    """Whether ``user`` may see an order started by ``owner``, with its card previews and PDFs: the
    operator who started it, and the roles that read every order (auditors)."""
    return bool(user.is_authenticated) and (user.name == owner or user.role in ORDER_READERS)


def require_order_access(owner: str) -> None:
    """403, with a page that names the order's owner, unless the logged-in user may see the order."""
    if not may_see_order(current_user, owner):
        message = (f"This order belongs to {owner}: only {owner} can open it and its card previews. "
                   "Auditors can read every order in the audit console.")
        abort(make_response(render_template("error.html", title="Not your order", message=message), 403))


def order_url(order_id: int, instance_id: str, owner: str) -> str | None:
    """The page of an order for the logged-in user: the auditor's record of it, the owner's own
    order page, or None when the user may not see it."""
    if not may_see_order(current_user, owner):
        return None
    if current_user.role in ORDER_READERS:
        return url_for("audit.order", order_id=order_id)
    return url_for("batch_orders.order", instance_id=instance_id) if current_user.role == "operator" else None


def home_url() -> str:
    """Where a logged-in user starts: the page of their role."""
    return url_for(HOME_BY_ROLE.get(current_user.role, "cards.lookup"))


def same_site_path(target: str) -> str | None:
    """``target`` when it is a plain path on this site, else None: never an open redirect.

    Browsers drop tabs and newlines and read a backslash as a slash, so ``/\\t/evil`` would
    become ``//evil``: any control character, whitespace, backslash or non-ASCII character is
    refused, as are a scheme, a host, and a path whose decoded form starts with two slashes.
    """
    if not target.startswith("/") or target.startswith("//") or not target.isascii():
        return None
    if any(c.isspace() or not c.isprintable() or c == "\\" for c in target):
        return None
    parts = urlsplit(target)
    path = unquote(parts.path)
    if parts.scheme or parts.netloc or path.startswith("//") or "\\" in path or not path.isprintable():
        return None
    return target


def _lockout_policy() -> LockoutPolicy:
    """The lockout the settings ask for."""
    settings = services().settings
    return LockoutPolicy(settings.login_max_failures, settings.login_lock_minutes,
                         settings.session_idle_minutes)


def _unknown_names() -> UnknownNames:
    """This app's failure counts of names that are no user (see UnknownNames)."""
    return current_app.extensions.setdefault("cardflow_unknown_names", UnknownNames())


def _end_login_session() -> None:
    """Delete the current login session's row, so a copy of the cookie stops working too."""
    if current_user.is_authenticated:
        with unit_of_work(services().sessions) as session:
            close_session(session, current_user.token, actor=current_user.name)
        logout_user()


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
    result = authenticate(services().sessions, name, request.form.get("password", ""), _lockout_policy(),
                          _unknown_names())
    if result.locked_until is not None:
        flash(LOCKED.format(until=result.locked_until), "error")
        return render_template("login.html", name=name), 429
    if result.token is None:
        flash(FAILED, "error")
        return render_template("login.html", name=name), 401
    _end_login_session()
    login_user(LoginUser(result.token, result.user_id, result.name, result.role))
    target = same_site_path(request.args.get("next", ""))
    return redirect(target or home_url(), code=303)


@bp.route("/logout", methods=("POST",))
def logout():
    """End the login session on the server and forget the logged-in user."""
    _end_login_session()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"), code=303)
