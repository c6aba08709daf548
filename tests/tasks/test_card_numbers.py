"""Card numbers are data: they never name a file, and a malformed one is refused when cards are made."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, insert, select
from sqlalchemy.orm import Session

import tasks.cardsdk.records  # noqa: F401  (the Card SDK's tables share the metadata)
from tasks.cards import check_card_number
from tasks.cardsdk.job import CardJob, CardSdkError
from tasks.cardsdk.printer import SpoolPrinter
from tasks.demo import add_requested_cards
from tasks.errors import CardflowError
from tasks.store import Base, Card

HOSTILE_NUMBERS = [
    "../../../somewhere/x", "/tmp/x", "TC-1/../../x", "TC-1\\..\\x", "TC-000001\n", " TC-1", "",
    "tc-000001", "TC-", "-000001", "TC-0000000000001", "TOOLONGPR-1", "TC-1\x00", "TC-１２",
]


@pytest.mark.parametrize("number", ["TC-000001", "TC-1", "ABCDEFGH-123456789012", "X-0"])
def test_well_formed_numbers_pass(number):
    check_card_number(number)


@pytest.mark.parametrize("number", HOSTILE_NUMBERS)
def test_malformed_numbers_are_refused_with_the_expected_shape(number):
    with pytest.raises(CardflowError, match="is not a valid card number.*like TC-000123"):
        check_card_number(number)


def test_a_number_that_is_not_text_is_refused():
    with pytest.raises(CardflowError, match="is not a valid card number"):
        check_card_number(17)  # type: ignore[arg-type]


@pytest.fixture
def session():
    """An empty in-memory database with the card tables."""
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as db:
        yield db
    engine.dispose()


def test_demo_cards_get_well_formed_numbers(session):
    assert add_requested_cards(session, 3, "Acme") == 3
    assert session.scalars(select(Card.number).order_by(Card.id)).all() == ["TC-000001", "TC-000002",
                                                                             "TC-000003"]


def test_creating_a_card_whose_number_would_be_malformed_is_refused(session):
    session.execute(insert(Card), [{"id": 10**12 - 1, "number": "TC-999999999999", "state": "requested",
                                    "organisation": "Acme"}])
    with pytest.raises(CardflowError, match="'TC-1000000000000' is not a valid card number"):
        add_requested_cards(session, 1, "Acme")


def job(spool: Path, number: str, card_id: int = 17) -> CardJob:
    """A print-only job for card ``card_id`` carrying ``number``."""
    return CardJob(card_id=card_id, card_number=number, organisation="Acme",
                   valid_until=date.today() + timedelta(days=14),
                   attempt_ref=f"order-3/card-{card_id}/attempt-2", spool_dir=spool, encode=False)


@pytest.mark.parametrize("number", ["../../../somewhere/x", "/tmp/cardflow-escape/x", "TC-1/../../x"])
def test_the_printer_names_files_from_ids_never_from_the_card_number(tmp_path, number):
    spool = tmp_path / "spool" / "order-3"
    printed = SpoolPrinter().print_card(job(spool, number), "a2")
    names = {"card-17-attempt-2-front.png", "card-17-attempt-2-back.png", "card-17-attempt-2.pdf"}
    assert {path.name for path in (printed.front_png, printed.back_png, printed.pdf)} == names
    assert {path.parent for path in (printed.front_png, printed.back_png, printed.pdf)} == {spool}
    assert {path.name for path in spool.iterdir()} == names
    assert [path for path in tmp_path.rglob("*") if path.is_file() and path.parent != spool] == []
    assert not Path("/tmp/cardflow-escape").exists()


@pytest.mark.parametrize("label", ["../x", "a2/../../x", "a", "2", "a-1", "a1 ", "a" + "9" * 20])
def test_an_attempt_label_that_is_not_a_number_is_refused(tmp_path, label):
    with pytest.raises(CardSdkError, match="attempt label"):
        SpoolPrinter().print_card(job(tmp_path, "TC-000017"), label)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("card_id", [-1, True, "17", 1.5])
def test_a_card_id_that_is_not_a_plain_integer_is_refused(tmp_path, card_id):
    with pytest.raises(CardSdkError, match="card id"):
        SpoolPrinter().print_card(job(tmp_path, "TC-000017", card_id), "a1")
    assert list(tmp_path.iterdir()) == []
