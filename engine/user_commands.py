"""``cardflow user ...``: the admin's user commands, each through ``engine.users`` and audited."""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable

import click
from sqlalchemy.orm import Session

from engine.db import unit_of_work
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


@click.group()
def user() -> None:
    """Manage console users: add, disable, enable, passwd, role, unlock, list."""


def _read_password() -> str:
    """A new password: prompted twice on a terminal, else the first line of stdin."""
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat: ") != password:
            raise click.ClickException("the passwords differ; nothing changed")
        return password
    return sys.stdin.readline().rstrip("\r\n")


def _change_user(obj, change: Callable[[Session], object], done: str) -> None:
    """Run one user change in a transaction; a refused change is one line and changes nothing."""
    try:
        with unit_of_work(obj.sessions) as session:
            change(session)
    except UserError as error:
        raise click.ClickException(str(error)) from None
    click.echo(done)


@user.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.pass_obj
def user_add(obj, name: str, role: str) -> None:
    """Add a user; the password is read from stdin when it is not a terminal, else prompted."""
    password = _read_password()
    _change_user(obj, lambda session: add_user(session, name, role, password, actor="cardflow user add"),
                 f"user {name} ({role}) added")


@user.command("disable")
@click.argument("name")
@click.pass_obj
def user_disable(obj, name: str) -> None:
    """Stop NAME from logging in; their open sessions end."""
    _change_user(obj, lambda session: disable_user(session, name, actor="cardflow user disable"),
                 f"user {name} disabled; their sessions have ended")


@user.command("enable")
@click.argument("name")
@click.pass_obj
def user_enable(obj, name: str) -> None:
    """Let a disabled user log in again."""
    _change_user(obj, lambda session: enable_user(session, name, actor="cardflow user enable"),
                 f"user {name} enabled")


@user.command("passwd")
@click.argument("name")
@click.pass_obj
def user_passwd(obj, name: str) -> None:
    """Reset NAME's password (read from stdin when it is not a terminal, else prompted)."""
    password = _read_password()
    _change_user(obj, lambda session: set_password(session, name, password, actor="cardflow user passwd"),
                 f"password of {name} reset; their sessions have ended")


@user.command("role")
@click.argument("name")
@click.argument("role", type=click.Choice(ROLES))
@click.pass_obj
def user_role(obj, name: str, role: str) -> None:
    """Give NAME another ROLE; their open sessions end."""
    _change_user(obj, lambda session: change_role(session, name, role, actor="cardflow user role"),
                 f"user {name} now has role {role}; their sessions have ended")


@user.command("unlock")
@click.argument("name")
@click.pass_obj
def user_unlock(obj, name: str) -> None:
    """End NAME's lockout after failed logins."""
    _change_user(obj, lambda session: unlock_user(session, name, actor="cardflow user unlock"),
                 f"user {name} unlocked")


@user.command("list")
@click.pass_obj
def user_list(obj) -> None:
    """Every user: name, role, state, failed logins, created."""
    with unit_of_work(obj.sessions) as session:
        for each in list_users(session):
            until = locked_until(each)
            state = ("disabled" if each.disabled else
                     f"locked until {until:%Y-%m-%d %H:%M} UTC" if until else "active")
            click.echo(f"{each.name:<24} {each.role:<9} {state:<32} {each.failed_logins:>3} failed  "
                       f"created {each.created_at:%Y-%m-%d %H:%M}")
