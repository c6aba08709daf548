"""Tamper evidence: real entries are written through sessions, then the database is changed
behind the application's back with plain SQL, and verify names the first entry that gives it
away, in words an auditor can act on."""

from __future__ import annotations

import base64
import os
import stat
from types import SimpleNamespace

import pytest
from sqlalchemy import insert, select, text, update

from engine import schema
from engine.audit_chain import entry_hash
from engine.audit_signing import (
    AuditKeyError,
    HeadSigner,
    key_id,
    load_or_create_key,
    load_public_key,
    public_key_path,
)
from engine.audit_verify import verify_chain
from engine.db import make_engine, make_sessions, unit_of_work
from engine.store import AuditEvent, AuditHead, Base

ENTRIES = 10
# The table itself: statements on it go around the ORM's chain listener, as a forger's would.
EVENTS = AuditEvent.__table__


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def sessions(request, tmp_path):
    """A session factory on a migrated, empty database: SQLite, then PostgreSQL."""
    url = (request.getfixturevalue("postgres_url") if request.param == "postgres"
           else f"sqlite:///{tmp_path / 'audit.db'}")
    engine = make_engine(url)
    schema.upgrade(engine, [Base.metadata])
    yield make_sessions(engine)
    engine.dispose()


@pytest.fixture
def signer(tmp_path) -> HeadSigner:
    """A signer with a fresh key file in the test's folder."""
    return HeadSigner(load_or_create_key(tmp_path / "keys" / "audit_signing_key"))


@pytest.fixture
def trail(sessions, signer):
    """Entries 1..10 about cards, orders and users, and a signed head at entry 10."""
    for n in range(1, ENTRIES + 1):
        with unit_of_work(sessions) as session:
            session.add(AuditEvent(actor=f"operator{n % 3}", action="card state changed", order_id=n % 4 + 1,
                                   card=f"TC-{n:06}", detail={"from": "reserved", "to": "issued", "n": n}))
    with unit_of_work(sessions) as session:
        signer.sign(session, "order 4 ended")
    return sessions


def _verify(sessions, signer):
    return verify_chain(sessions, signer.private_key.public_key())


def _sql(sessions, statement: str, **params) -> None:
    """Change the database directly, as someone with database rights would."""
    with unit_of_work(sessions) as session:
        session.execute(text(statement), params)


def _row(sessions, entry_id: int) -> dict:
    with unit_of_work(sessions) as session:
        return dict(session.execute(select(EVENTS).where(EVENTS.c.id == entry_id)).one()._mapping)


def test_an_untouched_trail_verifies(trail, signer):
    report = _verify(trail, signer)
    assert report.ok
    assert (report.entries, report.heads, report.last_head.entry_id) == (ENTRIES, 1, ENTRIES)
    assert report.summary().startswith(f"audit trail OK: {ENTRIES} entries, "
                                       "last signed head at entry 10 (signed ")


def test_an_edited_detail_names_that_entry(trail, signer):
    _sql(trail, """UPDATE audit_events SET detail = '{"from": "reserved", "to": "spoiled", "n": 4}'
                   WHERE id = 4""")
    report = _verify(trail, signer)
    assert not report.ok
    assert report.chain_break.entry_id == 4
    assert report.summary() == ("audit trail BROKEN: entry 4 was edited or forged: its content no longer "
                                "matches its hash")


def test_a_deleted_entry_names_the_entry_after_the_gap(trail, signer):
    _sql(trail, "DELETE FROM audit_events WHERE id = 5")
    report = _verify(trail, signer)
    assert report.chain_break.entry_id == 6
    assert report.chain_break.message == "entry 6 does not follow entry 4: entry 5 was removed"
    assert [p.entry_id for p in report.head_problems] == []  # the head still holds; the chain does not


def test_swapped_entries_name_the_first_of_them(trail, signer):
    third, seventh = _row(trail, 3), _row(trail, 7)
    with unit_of_work(trail) as session:
        for row, other in ((third, seventh), (seventh, third)):
            contents = {name: value for name, value in other.items() if name != "id"}
            session.execute(update(EVENTS).where(EVENTS.c.id == row["id"]).values(contents))
    report = _verify(trail, signer)
    assert report.chain_break.entry_id == 3
    assert "entry 3 is not the entry written there" in report.chain_break.message


def test_swapped_contents_under_their_own_hashes_name_the_first(trail, signer):
    _sql(trail, "UPDATE audit_events SET card = CASE id WHEN 2 THEN 'TC-000008' ELSE 'TC-000002' END "
                "WHERE id IN (2, 8)")
    assert _verify(trail, signer).chain_break.entry_id == 2


def test_a_forged_entry_slipped_in_is_named(trail, signer):
    """The forger knows the hash function, renumbers the entries after 5 and links a new 6."""
    for entry_id in range(ENTRIES, 5, -1):  # one by one, from the end: ids stay unique
        _sql(trail, "UPDATE audit_events SET id = id + 1 WHERE id = :id", id=entry_id)
    fifth = _row(trail, 5)
    forged = AuditEvent(id=6, at=fifth["at"], actor="operator1", action="card state changed",
                        card="TC-999999", order_id=2, detail={"to": "issued"}, prev_hash=fifth["hash"])
    forged.hash = entry_hash(forged.prev_hash, forged)
    with unit_of_work(trail) as session:
        session.execute(insert(EVENTS).values({name: getattr(forged, name) for name in EVENTS.c.keys()}))
    stored = _row(trail, 6)
    assert entry_hash(stored["prev_hash"], SimpleNamespace(**stored)) == stored["hash"]  # a perfect forgery
    report = _verify(trail, signer)
    assert report.chain_break.entry_id == 6
    assert report.chain_break.message == ("entry 6 was inserted: it and entry 7 both claim to follow "
                                          "the same entry")


def test_a_forged_entry_at_the_end_is_named(trail, signer):
    last = _row(trail, ENTRIES)
    _sql(trail, "INSERT INTO audit_events (id, at, actor, action, detail, prev_hash, hash) "
                "VALUES (11, :at, 'admin', 'user added', '{}', :prev, :hash)",
         at=last["at"], prev=last["hash"], hash="f" * 64)
    assert _verify(trail, signer).chain_break.entry_id == 11


def test_a_cut_off_tail_is_caught_by_the_last_signed_head(trail, signer):
    signed = _row(trail, ENTRIES)["hash"]
    _sql(trail, "DELETE FROM audit_events WHERE id > 7")
    report = _verify(trail, signer)
    assert report.chain_break is None  # what is left links up: only the signed head shows the cut
    assert not report.ok
    assert report.head_problems[0].message == (f"entries after 7 were removed: the last signed head names "
                                               f"entry 10 with hash {signed}")


def test_a_tail_cut_and_written_again_differs_from_the_signed_head(trail, signer):
    _sql(trail, "DELETE FROM audit_events WHERE id > 7")
    for n in range(3):
        with unit_of_work(trail) as session:
            session.add(AuditEvent(actor="operator1", action="card state changed", detail={"n": n}))
    report = _verify(trail, signer)
    assert report.chain_break is None
    assert report.head_problems[0].entry_id == ENTRIES
    assert "entry 10 no longer has the signed hash" in report.head_problems[0].message


def test_a_head_with_a_bad_signature_is_reported(trail, signer):
    _sql(trail, "UPDATE audit_heads SET reason = 'nothing happened'")
    report = _verify(trail, signer)
    assert report.chain_break is None
    assert report.head_problems[0].entry_id == ENTRIES
    assert "its signature does not verify (forged or altered head)" in report.head_problems[0].message


def test_a_head_signed_by_another_key_is_reported(trail, signer, tmp_path):
    with unit_of_work(trail) as session:
        HeadSigner(load_or_create_key(tmp_path / "other" / "key")).sign(session, "forged")
    report = _verify(trail, signer)
    [problem] = report.head_problems
    assert "which is not a known public key" in problem.message


def test_only_the_first_break_is_named_and_any_source_reads(trail, signer):
    _sql(trail, "UPDATE audit_events SET actor = 'nobody' WHERE id IN (3, 8)")
    with unit_of_work(trail) as session:
        assert verify_chain(session, signer.private_key.public_key()).chain_break.entry_id == 3
        assert verify_chain(session.connection(), [signer.private_key.public_key()]).chain_break.entry_id == 3


def test_a_head_signed_with_new_entries_covers_them(sessions, signer):
    with unit_of_work(sessions) as session:
        assert signer.sign(session, "nothing yet") is None  # an empty trail has no head
        session.add(AuditEvent(actor="operator", action="order completed", order_id=1))
        head = signer.sign(session, "order 1 ended")
    assert (head.entry_id, head.reason) == (1, "order 1 ended")
    with unit_of_work(sessions) as session:
        stored = session.scalars(select(AuditHead)).one()
    assert stored.key_id == key_id(signer.private_key.public_key()) == signer.key_id
    assert len(base64.b64decode(stored.signature)) == 64
    assert _verify(sessions, signer).ok


def test_the_key_is_a_private_file_and_its_public_half_sits_next_to_it(tmp_path):
    path = tmp_path / "instance" / "audit_signing_key"
    key = load_or_create_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(public_key_path(path).stat().st_mode) == 0o644
    assert key_id(load_public_key(public_key_path(path))) == key_id(key.public_key())
    assert key_id(load_or_create_key(path).public_key()) == key_id(key.public_key())  # kept, not replaced
    os.chmod(path, 0o644)
    with pytest.raises(AuditKeyError, match="chmod 600"):
        load_or_create_key(path)
    with pytest.raises(AuditKeyError, match="no public key at"):
        load_public_key(tmp_path / "missing.pub")
