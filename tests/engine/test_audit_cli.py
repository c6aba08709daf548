"""``cardflow audit``: verify exits 0 on a whole trail and 1 naming the first break, sign pins the
head with the key in the instance folder, export streams filtered entries as CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
import stat
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, text

from engine.audit_export import AuditFilters, filtered_entries
from engine.audit_signing import HeadSigner, load_or_create_key
from engine.cli import main
from engine.config import PROJECT_ROOT, Settings
from engine.db import make_engine, make_sessions, unit_of_work
from engine.store import AuditEvent


@pytest.fixture
def instance(tmp_path):
    """The instance folder the commands use."""
    return tmp_path / "instance"


@pytest.fixture
def cli(instance):
    """Run ``cardflow ARGS`` on an initialised instance; returns the click result."""
    env = {"CARDFLOW_INSTANCE_PATH": str(instance), "CARDFLOW_SOURCE_PATH": str(PROJECT_ROOT)}

    def run(*args, **extra_env):
        return CliRunner().invoke(main, list(args), env={**env, **extra_env})

    assert run("init").exit_code == 0
    return run


@pytest.fixture
def sessions(instance, cli):
    """Sessions on the instance's database, with entries about two cards, orders and users."""
    engine = make_engine(f"sqlite:///{instance / 'cardflow.db'}")
    sessions = make_sessions(engine)
    with unit_of_work(sessions) as session:
        for n in range(12):
            action = "order completed" if n % 3 == 0 else "card state changed"
            session.add(AuditEvent(actor=("alice", "bob")[n % 2], action=action, card=f"TC-00000{n % 2 + 1}",
                                   order_id=n % 3 + 1, at=datetime(2026, 11, 1 + n, 12, tzinfo=UTC),
                                   detail={"n": n, "note": 'ü,"x"'}))
    yield sessions
    engine.dispose()


def _entries(sessions) -> int:
    """How many entries the trail holds."""
    with unit_of_work(sessions) as session:
        return session.scalar(select(func.count()).select_from(AuditEvent))


def _ids(sessions, **where) -> list[int]:
    """The ids of the entries with the ``where`` column values, oldest first."""
    with unit_of_work(sessions) as session:
        return list(session.scalars(select(AuditEvent.id).filter_by(**where).order_by(AuditEvent.id)))


def test_verify_then_sign_then_verify(cli, sessions, instance):
    total = _entries(sessions)
    first = cli("audit", "verify")
    assert first.exit_code == 0, first.output
    assert first.output == f"audit trail OK: {total} entries, no signed head yet\n"
    signed = cli("audit", "sign", "--reason", "quarterly check")
    assert signed.exit_code == 0, signed.output
    assert signed.output.startswith(f"signed head: entry {total}, hash ")
    assert stat.S_IMODE((instance / "audit_signing_key").stat().st_mode) == 0o600
    assert stat.S_IMODE((instance / "audit_signing_key.pub").stat().st_mode) == 0o644
    again = cli("audit", "verify")
    assert again.exit_code == 0, again.output
    assert again.output.startswith(f"audit trail OK: {total} entries, "
                                   f"last signed head at entry {total} (signed ")


def test_verify_exits_1_naming_the_first_break(cli, sessions):
    cli("audit", "sign")
    with unit_of_work(sessions) as session:
        session.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE id IN (5, 9)"))
    broken = cli("audit", "verify")
    assert broken.exit_code == 1
    assert "entry 5 was edited or forged: its content no longer matches its hash" in broken.output
    assert "entry 9" not in broken.output
    with unit_of_work(sessions) as session:
        session.execute(text("DELETE FROM audit_events WHERE id >= 5"))
    cut = cli("audit", "verify")
    assert cut.exit_code == 1
    assert "entries after 4 were removed: the last signed head names entry" in cut.output


def test_the_key_can_live_elsewhere_and_verify_needs_only_its_public_half(cli, sessions, tmp_path):
    key = tmp_path / "vault" / "audit.pem"
    assert cli("audit", "sign", CARDFLOW_AUDIT_KEY=str(key)).exit_code == 0
    assert key.exists() and (tmp_path / "vault" / "audit.pem.pub").exists()
    own = cli("audit", "verify", "--public-key", str(tmp_path / "vault" / "audit.pem.pub"))
    assert own.exit_code == 0, own.output
    other = tmp_path / "other" / "key"
    load_or_create_key(other)
    wrong = cli("audit", "verify", "--public-key", f"{other}.pub")
    assert wrong.exit_code == 1 and "which is not a known public key" in wrong.output
    missing = cli("audit", "verify", "--public-key", str(tmp_path / "nowhere.pub"))
    assert missing.exit_code == 1 and "no public key at" in missing.output


def test_export_csv_filtered_by_card_and_user(cli, sessions):
    result = cli("audit", "export", "--format", "csv", "--card", "TC-000001", "--user", "alice")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert [int(row["id"]) for row in rows] == _ids(sessions, card="TC-000001", actor="alice")
    assert rows and all(row["card"] == "TC-000001" and row["actor"] == "alice" for row in rows)
    assert json.loads(rows[0]["detail"])["note"] == 'ü,"x"'
    assert len(rows[0]["hash"]) == 64


def test_export_json_by_order_and_time_to_a_file(cli, sessions, tmp_path):
    target = tmp_path / "export.json"
    result = cli("audit", "export", "--format", "json", "--order", "2", "--since", "2026-11-03",
                 "--until", "2026-11-09T00:00:00+00:00", "--output", str(target))
    assert result.exit_code == 0, result.output
    entries = json.loads(target.read_text())
    assert [entry["detail"]["n"] for entry in entries] == [4, 7]  # orders 2 are n = 1, 4, 7, 10
    assert entries[0]["at"] == "2026-11-05T12:00:00.000000+00:00"
    everything = json.loads(cli("audit", "export", "--format", "json", "--action", "order completed").output)
    assert [entry["detail"]["n"] for entry in everything] == [0, 3, 6, 9]


@pytest.mark.parametrize(("args", "message"), [
    (("--format", "csv", "--order", "twelve"), "order must be an order number such as 42, not 'twelve'"),
    (("--format", "csv", "--since", "last week"), "since must be an ISO 8601 date or time"),
    (("--format", "csv", "--since", "2026-12-01", "--until", "2026-11-01"), "must be before until"),
    (("--format", "xml",), "'xml' is not one of 'csv', 'json'"),
])
def test_bad_filters_exit_2_with_a_clear_error(cli, args, message):
    result = cli("audit", "export", *args)
    assert result.exit_code == 2
    assert message in result.output


def test_sign_on_an_empty_trail_says_so(cli, sessions):
    with unit_of_work(sessions) as session:
        session.execute(text("DELETE FROM audit_events"))
    result = cli("audit", "sign")
    assert (result.exit_code, result.output) == (0, "nothing to sign: the audit trail is empty\n")


def test_runtime_can_hold_a_signer_built_from_settings(instance, cli, sessions):
    signer = HeadSigner.from_settings(Settings(instance_path=instance, database_url="sqlite://"))
    with unit_of_work(sessions) as session:
        head = signer.sign(session, "order 3 ended")
    assert head.entry_id == _entries(sessions) and (instance / "audit_signing_key").exists()


def test_pages_go_newest_first_by_time_both_ways(cli, sessions):
    """The auditor console's keyset pages: newest first, older with before_id, newer with after_id,
    within a time range too; an entry written with an earlier time sits where its time puts it."""
    with unit_of_work(sessions) as session:
        session.add(AuditEvent(actor="alice", action="card state changed", card="TC-000001",
                               at=datetime(2026, 11, 4, 13, tzinfo=UTC), detail={"n": "late"}))
    alice = AuditFilters(actor="alice")
    with unit_of_work(sessions) as session:
        first = filtered_entries(session, alice, limit=3)
        older = filtered_entries(session, alice, before_id=first[-1].id, limit=3)
        back = filtered_entries(session, alice, after_id=older[0].id, limit=3)
        november = AuditFilters(since=datetime(2026, 11, 3, tzinfo=UTC),
                                until=datetime(2026, 11, 6, tzinfo=UTC))
        ranged = filtered_entries(session, november, limit=2)
        ranged_older = filtered_entries(session, november, before_id=ranged[-1].id)
        assert filtered_entries(session, alice, before_id=10**6) == []
    assert [e.detail["n"] for e in first + older] == [10, 8, 6, 4, "late", 2]
    assert [e.id for e in back] == [e.id for e in first]
    assert [e.detail["n"] for e in ranged + ranged_older] == [4, "late", 3, 2]
