"""The cardflow command as an admin uses it, configured only through CARDFLOW_* variables."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from engine.cli import main
from engine.config import PROJECT_ROOT
from engine.db import make_engine


@pytest.fixture
def cli(tmp_path):
    env = {"CARDFLOW_INSTANCE_PATH": str(tmp_path / "instance"), "CARDFLOW_SOURCE_PATH": str(PROJECT_ROOT)}

    def run(*args, input=None, source=None):
        if source is not None:
            env["CARDFLOW_SOURCE_PATH"] = str(source)
        return CliRunner().invoke(main, list(args), env=env, input=input)

    return run


def test_init_deploys_and_is_idempotent(cli):
    first = cli("init")
    assert first.exit_code == 0, first.output
    assert "TempCardsBoProcIssueMultiple v1 deployed" in first.output
    assert "TempCardsScriptOptions v1 deployed" in first.output
    again = cli("init")
    assert again.exit_code == 0, again.output
    assert "TempCardsBoProcIssueMultiple unchanged (v1)" in again.output
    assert "valid" in cli("deploy", "--check").output


def test_user_add_reads_the_password_from_stdin(cli):
    cli("init")
    added = cli("user", "add", "alice", "--role", "operator", input="a-long-password\n")
    assert added.exit_code == 0 and "user alice (operator) added" in added.output
    short = cli("user", "add", "bob", "--role", "operator", input="short\n")
    assert short.exit_code == 1 and "at least 12 characters" in short.output
    twice = cli("user", "add", "alice", "--role", "admin", input="a-long-password\n")
    assert twice.exit_code == 1 and "already exists" in twice.output
    assert "a-long-password" not in added.output + twice.output


def test_demo_data_and_card_listing(cli):
    cli("init")
    assert "5 requested cards added" in cli("demo-data", "--requested", "5").output
    listed = json.loads(cli("cards", "--json").output)
    assert [(c["number"], c["state"]) for c in listed][:2] == [("TC-000001", "requested"),
                                                               ("TC-000002", "requested")]
    assert len(listed) == 5
    assert json.loads(cli("cards", "--state", "unassigned", "--json").output) == []
    bad = cli("cards", "--state", "stolen")
    assert bad.exit_code == 1 and "unknown state 'stolen'" in bad.output


def test_bad_option_file_is_refused_with_line_and_previous_version_stays(cli, tmp_path):
    source = tmp_path / "source"
    for folder in ("processes", "forms", "options"):
        shutil.copytree(PROJECT_ROOT / folder, source / folder)
    assert cli("init", source=source).exit_code == 0
    script = source / "options" / "TempCardsScriptOptions"
    lines = script.read_text().splitlines()
    number = next(i for i, line in enumerate(lines, 1) if line.startswith("pin_length"))
    script.write_text(script.read_text().replace("pin_length = 6", "pin_length = 12"))
    refused = cli("deploy", source=source)
    assert refused.exit_code == 1
    assert f"TempCardsScriptOptions:{number}:" in refused.output and "6 to 8" in refused.output
    assert "nothing changed" in refused.output
    script.write_text(script.read_text().replace("pin_length = 12", "pin_length = 8"))
    assert "TempCardsScriptOptions v2 deployed" in cli("deploy", source=source).output


def test_commands_on_an_uninitialised_database_say_what_to_do(cli):
    listed = cli("cards")
    assert listed.exit_code == 1
    assert "the database is not ready" in listed.output and "cardflow init" in listed.output
    assert "Traceback" not in listed.output


def test_user_commands_change_users_and_say_what_is_wrong(cli):
    cli("init")
    assert cli("user", "add", "alice", "--role", "operator", input="a-long-password\n").exit_code == 0
    steps = [
        (("user", "disable", "alice"), None, 0, "user alice disabled; their sessions have ended"),
        (("user", "disable", "alice"), None, 1, "User alice is already disabled; nothing changed."),
        (("user", "enable", "alice"), None, 0, "user alice enabled"),
        (("user", "passwd", "alice"), "too-short\n", 1, "at least 12 characters"),
        (("user", "passwd", "alice"), "another-long-password\n", 0, "password of alice reset"),
        (("user", "role", "alice", "auditor"), None, 0, "user alice now has role auditor"),
        (("user", "role", "alice", "boss"), None, 2, "'boss' is not one of"),
        (("user", "unlock", "alice"), None, 1, "User alice is not locked"),
        (("user", "disable", "bob"), None, 1, "There is no user 'bob'."),
    ]
    for args, stdin, code, said in steps:
        result = cli(*args, input=stdin)
        assert result.exit_code == code and said in result.output, (args, result.output)
        assert "Traceback" not in result.output
    listed = cli("user", "list").output
    assert listed.split()[:4] == ["alice", "auditor", "active", "0"]


def test_the_instance_folder_and_the_database_are_private(cli, tmp_path):
    assert cli("init").exit_code == 0
    instance = tmp_path / "instance"
    db = make_engine(f"sqlite:///{instance / 'cardflow.db'}")
    with db.begin() as connection:
        connection.execute(text("CREATE TABLE probe (x INTEGER)"))
        # While a connection is open the -wal and -shm files exist: SQLite gives them the database's mode.
        mode = {path.name: path.stat().st_mode & 0o777 for path in (instance, *instance.iterdir())}
    db.dispose()
    assert mode["instance"] == 0o700
    assert {mode[name] for name in ("cardflow.db", "cardflow.db-wal", "cardflow.db-shm")} == {0o600}
