"""The web app's PostgreSQL role may only INSERT and SELECT the audit trail (docs/AUDIT.md): it
still writes one valid chain from several threads and signs heads, while PostgreSQL itself
refuses it any UPDATE, DELETE or TRUNCATE of an entry or a signed head."""

from __future__ import annotations

import os
import threading
from urllib.parse import unquote

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import create_engine, event, select, text
from sqlalchemy.exc import ProgrammingError

from engine import schema
from engine.audit_signing import HeadSigner, load_or_create_key
from engine.audit_verify import verify_chain
from engine.db import make_engine, make_sessions, unit_of_work
from engine.store import AuditEvent, Base, User

pytestmark = pytest.mark.postgres

# The grants of docs/AUDIT.md, for a role and a schema.
GRANTS = """
GRANT USAGE ON SCHEMA {schema} TO {role};
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role};
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role};
REVOKE ALL ON {schema}.audit_events, {schema}.audit_heads FROM {role};
GRANT SELECT, INSERT ON {schema}.audit_events, {schema}.audit_heads TO {role};
"""


@pytest.fixture
def app_role(postgres_url):
    """A role with full rights on every table but only SELECT and INSERT on the audit trail;
    yields (its name, the schema), then drops it."""
    schema_name = unquote(postgres_url.rsplit("search_path%3D", 1)[1])
    owner = make_engine(postgres_url)
    schema.upgrade(owner, [Base.metadata])
    role = f"cardflow_app_{os.urandom(4).hex()}"
    with owner.begin() as connection:
        connection.execute(text(f"CREATE ROLE {role} NOLOGIN"))
        for statement in filter(None, (s.strip() for s in GRANTS.split(";"))):
            connection.execute(text(statement.format(schema=f'"{schema_name}"', role=role)))
    owner.dispose()
    yield role
    admin = create_engine(postgres_url)
    with admin.begin() as connection:
        connection.execute(text(f"DROP OWNED BY {role}"))
        connection.execute(text(f"DROP ROLE {role}"))
    admin.dispose()


@pytest.fixture
def app_sessions(postgres_url, app_role):
    """Sessions whose connections act as the app role (SET ROLE on connect)."""
    engine = make_engine(postgres_url)

    @event.listens_for(engine, "connect")
    def _as_app_role(dbapi_connection, _record):
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET ROLE {app_role}")
        dbapi_connection.commit()

    yield make_sessions(engine)
    engine.dispose()


def test_the_app_role_appends_a_valid_chain_from_two_threads(app_sessions, tmp_path):
    signer = HeadSigner(load_or_create_key(tmp_path / "audit_signing_key"))
    barrier, failures = threading.Barrier(2), []

    def write(name: str) -> None:
        barrier.wait()
        try:
            for n in range(25):
                with unit_of_work(app_sessions) as session:
                    session.add(AuditEvent(actor=name, action="card state changed", card=f"TC-{n:06}",
                                           order_id=n % 3 + 1, detail={"to": "issued"}))
                    if n % 10 == 9:
                        signer.sign(session, f"{name}: order ended")
        except Exception as error:  # noqa: BLE001 - reported by the main thread
            failures.append(error)

    threads = [threading.Thread(target=write, args=(name,)) for name in ("operator1", "operator2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    with unit_of_work(app_sessions) as session:
        assert session.scalar(text("SELECT current_user")).startswith("cardflow_app_")
        ids = list(session.scalars(select(AuditEvent.id).order_by(AuditEvent.id)))
    assert ids == list(range(1, 51))
    report = verify_chain(app_sessions, signer.private_key.public_key())
    assert report.ok, report.problems
    assert (report.entries, report.heads) == (50, 4)


@pytest.mark.parametrize("statement", [
    "UPDATE audit_events SET actor = 'mallory' WHERE id = 1",
    "DELETE FROM audit_events WHERE id = 1",
    "TRUNCATE audit_events",
    "UPDATE audit_heads SET hash = 'x'",
    "DELETE FROM audit_heads",
])
def test_postgres_refuses_the_app_role_any_change_to_the_trail(app_sessions, statement):
    with unit_of_work(app_sessions) as session:
        session.add(AuditEvent(actor="operator1", action="order completed", order_id=1))
        HeadSigner(Ed25519PrivateKey.generate()).sign(session, "order 1 ended")
    with pytest.raises(ProgrammingError, match="permission denied"):
        with unit_of_work(app_sessions) as session:
            session.execute(text(statement))
    with unit_of_work(app_sessions) as session:  # while the other tables stay fully writable
        session.add(User(name="alice", role="operator", password_hash="x"))
        session.flush()
        session.execute(text("UPDATE users SET role = 'admin' WHERE name = 'alice'"))
        session.execute(text("DELETE FROM users WHERE name = 'alice'"))
