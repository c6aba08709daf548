"""``cardflow holders import FILE.csv`` on both databases: an idempotent upsert keyed by the
identifier, all or nothing, and every kind of hostile file refused with the line at fault."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from engine import bootstrap
from engine.cli import main
from engine.db import make_engine, make_sessions, unit_of_work
from engine.store import AuditEvent
from tasks.holders import MAX_FILE_BYTES, find_holders, holder_key
from tasks.store import Holder
from tests.conftest import make_settings

GOOD = ("identifier,name,email,unit\n"
        "E1001,Ada Lovelace,ada@example.org,Engineering\n"
        "E1002,Grace Hopper,grace@example.org,Navy\n"
        "E1003,Émile Zola,emile@example.fr,Letters\n")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def cli(request, tmp_path) -> Iterator:
    """``cardflow`` on a migrated database, and its sessions to look at what an import did."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    settings = make_settings(tmp_path / "instance", url)
    bootstrap.init_database(settings)
    env = {"CARDFLOW_INSTANCE_PATH": str(settings.instance_path),
           "CARDFLOW_DATABASE_URL": settings.database_url}
    engine = make_engine(settings.database_url)

    def run(content: str | bytes, name: str = "holders.csv"):
        path = tmp_path / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return CliRunner().invoke(main, ["holders", "import", str(path)], env=env)

    run.sessions, run.env = make_sessions(engine), env
    yield run
    engine.dispose()


def holders(sessions) -> dict[str, tuple]:
    with unit_of_work(sessions) as session:
        return {row.identifier: (row.name, row.email, row.unit, row.state)
                for row in session.scalars(select(Holder))}


def test_an_import_adds_then_updates_and_is_idempotent(cli):
    first = cli(GOOD)
    assert first.exit_code == 0, first.output
    assert "3 holders added, 0 changed, 0 unchanged" in first.output
    again = cli(GOOD)
    assert "0 holders added, 0 changed, 3 unchanged" in again.output
    changed = cli("identifier,name,email,unit,state\n"
                  "E1002,Grace B. Hopper,grace@example.org,Navy,active\n"
                  "E1003,Émile Zola,emile@example.fr,Letters,inactive\n"
                  "E1004,Alan Turing,alan@example.org,Bletchley,\n")
    assert "1 holders added, 2 changed, 0 unchanged" in changed.output, changed.output
    found = holders(cli.sessions)
    assert found["E1001"] == ("Ada Lovelace", "ada@example.org", "Engineering", "active")
    assert found["E1002"][0] == "Grace B. Hopper"
    assert found["E1003"][3] == "inactive" and found["E1004"][3] == "active"
    with unit_of_work(cli.sessions) as session:
        entries = session.scalars(select(AuditEvent).where(AuditEvent.action == "holders imported")).all()
    # Two imports changed something, the identical one did not.
    assert [(entry.detail["added"], entry.detail["changed"]) for entry in entries] == [(3, 0), (1, 2)]
    assert entries[1].detail["changed_identifiers"] == ["E1002", "E1003"]


@pytest.mark.parametrize(("content", "expected"), [
    ("identifier,name,email,unit\nE1,Ok Person,ok@example.org,U\nE2,=HYPERLINK(\"http://x\"),a@example.org,U\n",
     "line 3: name starts with '=', which a spreadsheet would run as a formula"),
    ("identifier,name,email,unit\nE1,Ok Person,ok@example.org,@SUM(A1)\n", "line 2: unit starts with '@'"),
    ("identifier,name,email,unit\nE1,Ok Person,ok@example.org,U\nE1,Other Person,other@example.org,U\n",
     "line 3: identifier E1 is also on line 2"),
    ("identifier,name,email,unit\nE1,Ok Person,not-an-address,U\n", "line 2: email 'not-an-address' is not"),
    ("identifier,name,email,unit\n../etc/passwd,Ok Person,ok@example.org,U\n", "line 2: identifier must be"),
    ("identifier,name,email,unit\nE1,Ok Person,ok@example.org\n", "line 2: 3 columns, the header has 4"),
    ("identifier,name,email,unit\nE1,,ok@example.org,U\n", "line 2: name is empty"),
    ("identifier,name,email,unit\nE1,Bell\x07Person,ok@example.org,U\n",
     "line 2: name holds a control character"),
    ("identifier,name,email,unit\nE1,Ok Person,ok@example.org,U,inactive\n", "line 2: 5 columns"),
    ("identifier,name,email,unit,state\nE1,Ok Person,ok@example.org,U,gone\n",
     "line 2: state must be active or inactive"),
    ("name,identifier,email,unit\nOk Person,E1,ok@example.org,U\n", "line 1: the header must be"),
    ("identifier,name,email,unit\nE1,\"Ok Person,ok@example.org,U\n", "line 2"),
    ("identifier,name,email,unit\nE1,Ok Person,ok@example.org,U\nE2,A\0B,b@example.org,U\n", "line 3"),
    ("identifier,name,email,unit\nE1," + "x" * 201 + ",ok@example.org,U\n", "name is longer than 200"),
])
def test_a_bad_row_names_its_line_and_nothing_is_imported(cli, content, expected):
    result = cli(content)
    assert result.exit_code == 1
    assert expected in result.output, result.output
    assert "Nothing was imported" in result.output
    assert holders(cli.sessions) == {}


def test_bad_encoding_and_huge_files_are_refused(cli):
    latin1 = "identifier,name,email,unit\nE1,Ok Person,ok@example.org,U\nE2,Jos\xe9,j@example.org,U\n"
    refused = cli(latin1.encode("latin-1"))
    assert refused.exit_code == 1 and "line 3: the file is not UTF-8" in refused.output
    huge = cli(b"identifier,name,email,unit\n" + b"x" * MAX_FILE_BYTES)
    assert huge.exit_code == 1 and "at most" in huge.output and "split it" in huge.output
    missing = CliRunner().invoke(main, ["holders", "import", "/nonexistent/holders.csv"], env=cli.env)
    assert missing.exit_code == 1 and "cannot read" in missing.output
    assert "nothing was imported" in missing.output
    assert holders(cli.sessions) == {}


def test_a_byte_order_mark_and_blank_lines_are_fine(cli):
    result = cli(b"\xef\xbb\xbf" + GOOD.replace("\nE1002", "\n\nE1002").encode())
    assert "3 holders added" in result.output, result.output


def test_many_problems_are_listed_up_to_twenty(cli):
    rows = "".join(f"E{n},=bad,e{n}@example.org,U\n" for n in range(50))
    result = cli("identifier,name,email,unit\n" + rows)
    assert "line 2:" in result.output and "line 21:" in result.output and "line 22:" not in result.output
    assert "and 30 more problems" in result.output


def test_holders_are_found_by_name_start_in_any_case_or_by_identifier_in_keyset_pages(cli):
    rows = "".join(f"H{n:03d},Person {n:03d},p{n}@example.org,U\n" for n in range(45))
    cli("identifier,name,email,unit\n" + rows + "Z1,zoë Müller,z@example.org,U\n")
    with unit_of_work(cli.sessions) as session:
        assert [match.identifier for match in find_holders(session, "ZOË MÜ")] == ["Z1"]
        assert [match.identifier for match in find_holders(session, "H007")] == ["H007"]
        first = find_holders(session, "person", limit=20)
        second = find_holders(session, "person", after=holder_key(first[-1]), limit=20)
        third = find_holders(session, "person", after=holder_key(second[-1]), limit=20)
        assert [len(first), len(second), len(third)] == [20, 20, 5]
        assert len({match.id for match in first + second + third}) == 45
        assert find_holders(session, "'; DROP TABLE holders; --") == []
        assert session.scalar(select(func.count()).select_from(Holder)) == 46
