"""What the card picker reads and writes, on both databases: the letters of the requested cards'
numbers, which complete a number typed as digits only."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import update

from engine import bootstrap
from engine.db import make_engine, make_sessions, unit_of_work
from tasks.card_search import number_letters
from tasks.demo import add_requested_cards
from tasks.store import Card
from tests.conftest import make_settings


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def sessions(request, tmp_path) -> Iterator:
    """Sessions on a migrated database with 12 requested cards (TC-000001 to TC-000012)."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    settings = make_settings(tmp_path / "instance", url)
    bootstrap.init_database(settings)
    engine = make_engine(settings.database_url)
    sessions = make_sessions(engine)
    with unit_of_work(sessions) as session:
        add_requested_cards(session, 12, "Test Organisation")
    yield sessions
    engine.dispose()


def test_the_letters_of_requested_card_numbers(sessions):
    with unit_of_work(sessions) as session:
        assert number_letters(session) == ("TC",)
        session.execute(update(Card).where(Card.id == 12).values(number="AB-000012"))
        assert number_letters(session) == ("AB", "TC")
        session.execute(update(Card).values(state="aborted"))
        assert number_letters(session) == ()
