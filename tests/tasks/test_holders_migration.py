"""Upgrading a database that already has cards to the holders schema (0009), on both databases:
the cards and their history stay, and each card can then point at a holder."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import text

from engine import bootstrap, schema
from engine.db import make_engine
from tests.conftest import make_settings

BEFORE_HOLDERS = "c8a3e6f40008"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request, tmp_path):
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    settings = make_settings(tmp_path / "instance", url)
    settings.ensure_instance()
    engine = make_engine(settings.database_url)
    yield engine
    engine.dispose()


def test_a_database_with_cards_and_their_history_upgrades(engine):
    with engine.begin() as connection:
        command.upgrade(schema._config(connection, bootstrap.METADATA), BEFORE_HOLDERS)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO cards (id, number, state, organisation, requested_at, "
                                "updated_at) VALUES (1, 'TC-000001', 'unassigned', 'o', CURRENT_TIMESTAMP, "
                                "CURRENT_TIMESTAMP)"))
        connection.execute(text("INSERT INTO card_events (card_id, at, actor, to_state, reason) "
                                "VALUES (1, CURRENT_TIMESTAMP, 'demo', 'requested', 'Requested.')"))
    schema.upgrade(engine, bootstrap.METADATA)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO holders (id, identifier, name, name_key, email, unit, state, "
                                "updated_at) VALUES (5, 'E1', 'Ada', 'ada', 'a@example.org', '', 'active', "
                                "CURRENT_TIMESTAMP)"))
        connection.execute(text("UPDATE cards SET holder_id = 5 WHERE id = 1"))
        assert connection.execute(text("SELECT number, holder_id FROM cards")).all() == [("TC-000001", 5)]
        assert connection.execute(text("SELECT count(*) FROM card_events")).scalar() == 1
    with pytest.raises(Exception, match="(?i)foreign key"), engine.begin() as connection:
        connection.execute(text("UPDATE cards SET holder_id = 99 WHERE id = 1"))
