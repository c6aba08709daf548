"""Search terms as operators type them: dates in the shapes people write, number prefixes with or
without letters; anything else refused with a message that names the field."""

from __future__ import annotations

from datetime import date

import pytest

from tasks.search_terms import NumberPrefix, TermError, read_day, read_number_prefix

END_OF_MARCH = date(2026, 3, 31)


@pytest.mark.parametrize("typed", [
    "2026-03-31", "2026-3-31", " 2026-03-31 ", "2026/03/31", "2026.03.31", "31.03.2026", "31.3.2026",
    "31/03/2026", "03/31/2026", "31-03-2026", "20260331",
])
def test_a_day_is_read_in_the_shapes_people_type(typed):
    assert read_day(typed, "Requested from") == END_OF_MARCH


def test_the_same_day_either_way_round_is_not_ambiguous():
    assert read_day("04/04/2026", "Requested to") == date(2026, 4, 4)


def test_nothing_typed_is_no_day():
    assert read_day("  ", "Requested from") is None


@pytest.mark.parametrize(("typed", "says"), [
    ("03/04/2026", "03/04/2026 could be 2026-04-03 or 2026-03-04"),
    ("31/03/26", "has a year of two digits"),
    ("9999-12-31", "is not a year from 2000 to 2099"),
    ("0001-01-01", "is not a year from 2000 to 2099"),
    ("2026-02-30", "2026-02-30 is not a day of the calendar"),
    ("2026-13-01", "is not a day of the calendar"),
    ("-2026-03-31", "enter a date as YYYY-MM-DD"),
    ("yesterday", "enter a date as YYYY-MM-DD"),
    ("<script>alert(1)</script>", "enter a date as YYYY-MM-DD"),
    ("2026-03-31' OR '1'='1", "enter a date as YYYY-MM-DD"),
    ("\uff12\uff10\uff12\uff16-03-31", "enter a date as YYYY-MM-DD"),  # fullwidth digits
    ("\u0662\u0660\u0662\u0666-03-31", "enter a date as YYYY-MM-DD"),  # Arabic-Indic digits
    ("2026-03-31" * 20, "enter a date as YYYY-MM-DD"),
    ("2026 03 31", "enter a date as YYYY-MM-DD"),
])
def test_a_day_that_is_not_one_or_could_be_two_is_refused_naming_the_field(typed, says):
    with pytest.raises(TermError) as refused:
        read_day(typed, "Requested to")
    assert str(refused.value).startswith("Requested to: ") and says in str(refused.value)
    assert "such as 2026-03-31" in str(refused.value)


@pytest.mark.parametrize(("typed", "prefix"), [
    ("tc-0001", NumberPrefix("TC", "0001")),
    (" TC-000123 ", NumberPrefix("TC", "000123")),
    ("TC0001", NumberPrefix("TC", "0001")),
    ("tc", NumberPrefix("TC", "", dash=False)),
    ("TC-", NumberPrefix("TC", "")),
    ("000123", NumberPrefix(None, "000123")),
    ("123", NumberPrefix(None, "123")),
])
def test_a_number_prefix_is_read_in_capitals_with_or_without_letters(typed, prefix):
    assert read_number_prefix(typed, "Card number") == prefix


@pytest.mark.parametrize("typed", [
    "-5", "TC-00-1", "TC 0001", "<b>TC</b>", "TC-1' OR '1'='1", "TC-%", "\u0661\u0662\u0663",
    "\uff34\uff23-1", "TC-" + "1" * 13, "ABCDEFGHI-1", "9" * 41,
])
def test_what_cannot_start_a_card_number_is_refused_naming_the_field(typed):
    with pytest.raises(TermError, match="^Card number: "):
        read_number_prefix(typed, "Card number")


def test_a_prefix_is_written_as_card_numbers_are():
    assert NumberPrefix("TC", "0001").written((), "Card number") == "TC-0001"
    assert NumberPrefix("TC", "", dash=False).written((), "Card number") == "TC"
    assert NumberPrefix(None, "000123").written(("TC",), "Card number") == "TC-000123"
    assert NumberPrefix(None, "000123").written((), "Card number") == "000123"


def test_digits_alone_among_numbers_with_several_letters_ask_for_the_letters():
    with pytest.raises(TermError, match=r"^Card number: .*\(AB-, TC-, \.\.\.\); type them too, such as AB-"):
        NumberPrefix(None, "0001").written(("AB", "TC"), "Card number")
