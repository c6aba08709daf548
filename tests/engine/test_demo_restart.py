"""Restarting ``cardflow demo`` (what ``make demo`` runs) keeps what an admin changed in the
console: it deploys only the shipped processes, forms and options the database has no version of,
and never moves the current version away from one an admin deployed or rolled back to. The real
command runs, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine import bootstrap
from engine.config import PROJECT_ROOT
from engine.db import make_engine, make_sessions, unit_of_work
from engine.deployment import Source, deploy_sources
from engine.store import FormVersion, OptionVersion
from engine.versions import current_version_number, get_version, rollback
from tasks.handlers import build_handlers

FORM = "search_cards.uischema.json"
OPTIONS = "TempCardsScriptOptions"


def free_port() -> int:
    """A port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_demo(env: dict[str, str]) -> str:
    """Start ``cardflow demo``, wait until it serves, stop it; its output."""
    command = [sys.executable, "-c", "from engine.cli import main; main()", "demo",
               "--port", str(free_port()), "--requested", "3"]
    lines = []
    deadline = time.monotonic() + 120
    with subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True) as process:
        try:
            for line in process.stdout:
                lines.append(line)
                if line.startswith("cardflow serving on") or time.monotonic() > deadline:
                    break
        finally:
            process.terminate()
            process.wait(timeout=30)
    output = "".join(lines)
    assert "cardflow serving on" in output, output
    return output


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def demo(request, tmp_path):
    """The environment of a demo on its own instance folder and a copy of the shipped files."""
    source = tmp_path / "source"
    for folder in ("processes", "forms", "options"):
        shutil.copytree(PROJECT_ROOT / folder, source / folder)
    env = {**os.environ, "CARDFLOW_INSTANCE_PATH": str(tmp_path / "instance"),
           "CARDFLOW_SOURCE_PATH": str(source)}
    env.pop("CARDFLOW_DATABASE_URL", None)
    if request.param == "postgres":
        env["CARDFLOW_DATABASE_URL"] = request.getfixturevalue("postgres_url")
    return env, source


def sessions_of(env: dict[str, str]):
    """Sessions on the demo's database, and its engine (to dispose)."""
    instance = Path(env["CARDFLOW_INSTANCE_PATH"])
    url = env.get("CARDFLOW_DATABASE_URL") or f"sqlite:///{instance / 'cardflow.db'}"
    engine = make_engine(url)
    return make_sessions(engine), engine


def test_a_restart_keeps_what_an_admin_changed(demo):
    env, source = demo
    first = run_demo(env)
    assert f"{FORM} v1 deployed" in first and f"{OPTIONS} v1 deployed" in first
    sessions, engine = sessions_of(env)
    edited = (source / "forms" / FORM).read_text().replace("Tick cards on any page", "Tick the cards")
    try:
        with unit_of_work(sessions) as session:
            # What the admin console does: deploy an edited form, and take back a new option version.
            operators = set(build_handlers(sessions, None))
            deploy_sources(session, [Source(FORM, edited.encode(), FORM)], operators, {}, "admin",
                           widgets=bootstrap.published_widgets().names())
            shipped = (source / "options" / OPTIONS).read_bytes()
            options = shipped.replace(b"pin_length = 6", b"pin_length = 8")
            deploy_sources(session, [Source(OPTIONS, options, OPTIONS)], set(), bootstrap.OPTION_VALIDATORS,
                           "admin")
            rollback(session, "option", OPTIONS, 1, "admin")
        # A file shipped later, which the database has never seen, is deployed at the restart.
        for kind in ("schema", "uischema"):
            forms = source / "forms"
            shutil.copy(forms / f"selected_cards.{kind}.json", forms / f"later.{kind}.json")
        again = run_demo(env)
        assert f"{FORM} kept as deployed (v2)" in again and f"{OPTIONS} kept as deployed (v1)" in again
        assert "later.schema.json v1 deployed" in again and " v2 deployed" not in again
        assert "TempCardsBoProcIssueMultiple kept as deployed (v2)" in again  # bound to the edited form
        with unit_of_work(sessions) as session:
            assert current_version_number(session, "form", FORM) == 2
            assert get_version(session, "form", FORM).body == edited
            assert current_version_number(session, "option", OPTIONS) == 1
            assert session.scalar(select(func.count()).select_from(FormVersion)
                                  .where(FormVersion.name == FORM)) == 2
            assert session.scalar(select(func.count()).select_from(OptionVersion)
                                  .where(OptionVersion.name == OPTIONS)) == 2
    finally:
        engine.dispose()
