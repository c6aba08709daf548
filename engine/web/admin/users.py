"""Users: every console user with their state; add one, disable or enable, reset a password,
change a role, unlock after failed logins. Each change goes through ``engine.users`` (audited);
a refused change re-draws the page with the reason next to its form and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.orm import Session

from engine.db import read_only, unit_of_work
from engine.users import (
    ROLES,
    UserError,
    add_user,
    change_role,
    disable_user,
    enable_user,
    list_users,
    locked_until,
    set_password,
    unlock_user,
)
from engine.web.admin import admin_only, bp
from engine.web.context import services


def _page(refused: tuple[str | None, str] | None = None, new_user: dict[str, str] | None = None,
          status: int = 200):
    """The users page; ``refused`` is (user name, or None for the add form; what was wrong)."""
    with read_only(services().sessions) as session:
        users = [{"name": user.name, "role": user.role, "disabled": user.disabled,
                  "locked_until": locked_until(user), "failed_logins": user.failed_logins,
                  "created_at": user.created_at} for user in list_users(session)]
    refused_name, problem = refused or (None, None)
    # A refused change to a user who is not listed (gone meanwhile) is shown above the table.
    unplaced = refused_name is not None and refused_name not in {user["name"] for user in users}
    return render_template("admin/users.html", users=users, roles=ROLES, me=current_user.name,
                           refused_name=refused_name, problem=problem, unplaced=unplaced,
                           new_user=new_user or {"name": "", "role": ROLES[0]},
                           settings=services().settings), status


def _change(name: str, change: Callable[[Session], object], done: str):
    """Run one change in its own transaction: on success say ``done``, else show why next to the user."""
    try:
        with unit_of_work(services().sessions) as session:
            change(session)
    except UserError as error:
        return _page((name, str(error)), status=400)
    flash(done, "info")
    return redirect(url_for("admin.users"), code=303)


@bp.route("/users")
@admin_only
def users():
    """Every user: name, role, state (active, disabled, locked until ...), failed logins, created."""
    return _page()


@bp.route("/users/new", methods=("POST",))
@admin_only
def user_add():
    """Add a user with a name, a role and a first password."""
    name, role = request.form.get("name", "").strip(), request.form.get("role", "")
    try:
        with unit_of_work(services().sessions) as session:
            add_user(session, name, role, request.form.get("password", ""), actor=current_user.name)
    except UserError as error:
        return _page((None, str(error)), new_user={"name": name, "role": role}, status=400)
    flash(f"User {name} ({role}) added.", "info")
    return redirect(url_for("admin.users"), code=303)


@bp.route("/users/<name>/disable", methods=("POST",))
@admin_only
def user_disable(name: str):
    """Stop the user from logging in; their open sessions end at once."""
    return _change(name, lambda session: disable_user(session, name, current_user.name),
                   f"User {name} is disabled; their sessions have ended.")


@bp.route("/users/<name>/enable", methods=("POST",))
@admin_only
def user_enable(name: str):
    """Let a disabled user log in again."""
    return _change(name, lambda session: enable_user(session, name, current_user.name),
                   f"User {name} is enabled.")


@bp.route("/users/<name>/unlock", methods=("POST",))
@admin_only
def user_unlock(name: str):
    """End a lockout after failed logins."""
    return _change(name, lambda session: unlock_user(session, name, current_user.name),
                   f"User {name} is unlocked.")


@bp.route("/users/<name>/role", methods=("POST",))
@admin_only
def user_role(name: str):
    """Give the user another role; they log in again to use it."""
    role = request.form.get("role", "")
    return _change(name, lambda session: change_role(session, name, role, current_user.name),
                   f"User {name} now has role {role}; their sessions have ended.")


@bp.route("/users/<name>/password", methods=("POST",))
@admin_only
def user_password(name: str):
    """Reset the user's password; their sessions end."""
    password = request.form.get("password", "")
    return _change(name, lambda session: set_password(session, name, password, current_user.name),
                   f"The password of {name} is reset; their sessions have ended.")
