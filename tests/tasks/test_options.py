"""The temporary-card option rules, and how deploy reports a broken option with its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.definitions import DeployError, validate_options
from tasks.options import CERTIFICATE_TYPES, TEMP_CARDS_OPTIONS, validate_temp_card_options

SHIPPED = Path(__file__).resolve().parents[2] / "options" / TEMP_CARDS_OPTIONS
DEFAULTS = {"pin_length": 6, "puk_length": 8, "encode_card": True,
            "certificates": ["PIV Authentication"], "validity_days": 14}


def test_the_defaults_are_valid():
    assert validate_temp_card_options(dict(DEFAULTS)) == []


@pytest.mark.parametrize("values", [
    {"pin_length": 8},
    {"validity_days": 1},
    {"validity_days": 366},
    {"certificates": list(CERTIFICATE_TYPES)},
    {"encode_card": False, "certificates": []},
])
def test_boundary_values_are_accepted(values):
    assert validate_temp_card_options({**DEFAULTS, **values}) == []


@pytest.mark.parametrize(("change", "option", "reason"), [
    ({"pin_length": 5}, "pin_length", "6 to 8"),
    ({"pin_length": 9}, "pin_length", "6 to 8"),
    ({"pin_length": True}, "pin_length", "whole number"),
    ({"pin_length": "6"}, "pin_length", "whole number"),
    ({"puk_length": 6}, "puk_length", "must be 8"),
    ({"encode_card": 1}, "encode_card", "True or False"),
    ({"validity_days": 0}, "validity_days", "1 to 366"),
    ({"validity_days": 367}, "validity_days", "1 to 366"),
    ({"validity_days": 14.0}, "validity_days", "whole number"),
    ({"certificates": "PIV Authentication"}, "certificates", "a list"),
    ({"certificates": ["PIV Auth"]}, "certificates", "unknown certificate types"),
    ({"certificates": ["Key Management", "Key Management"]}, "certificates", "more than once"),
    ({"encode_card": False}, "certificates", "only valid when encoding is on"),
    ({"colour": "red"}, "colour", "unknown option"),
])
def test_each_bad_value_is_refused_with_its_option(change, option, reason):
    problems = validate_temp_card_options({**DEFAULTS, **change})
    assert [name for name, _ in problems] == [option]
    assert reason in problems[0][1]


def test_a_missing_option_is_refused():
    values = dict(DEFAULTS)
    del values["validity_days"]
    assert validate_temp_card_options(values) == [("validity_days", "missing; every option must be set")]


@pytest.mark.parametrize(("old", "new", "reason"), [
    ("pin_length = 6", "pin_length = 12", "6 to 8"),
    ("puk_length = 8", "puk_length = 6", "must be 8"),
    ("encode_card = True", "encode_card = False", "only valid when encoding is on"),
    ("validity_days = 14", "validity_days = 400", "1 to 366"),
])
def test_deploy_reports_a_bad_value_at_the_line_where_it_is_set(tmp_path, old, new, reason):
    script = tmp_path / TEMP_CARDS_OPTIONS
    script.write_text(SHIPPED.read_text().replace(old, new))
    with pytest.raises(DeployError) as refused:
        validate_options(script, {TEMP_CARDS_OPTIONS: validate_temp_card_options})
    [problem] = refused.value.problems
    option = new.split(" = ")[0] if "encode" not in new else "certificates"
    expected = next(n for n, line in enumerate(script.read_text().splitlines(), 1) if line.startswith(option))
    assert problem.line == expected and reason in problem.reason


def test_the_shipped_script_deploys(tmp_path):
    validated = validate_options(SHIPPED, {TEMP_CARDS_OPTIONS: validate_temp_card_options})
    assert validated.values == DEFAULTS


@pytest.mark.parametrize("value", ["False", "0", '"no"', "None"])
def test_deploy_refuses_a_script_that_turns_card_authentication_off(tmp_path, value):
    script = tmp_path / TEMP_CARDS_OPTIONS
    script.write_text(SHIPPED.read_text() + f"\ncard_authentication = {value}\n")
    with pytest.raises(DeployError) as refused:
        validate_options(script, {TEMP_CARDS_OPTIONS: validate_temp_card_options})
    [problem] = refused.value.problems
    assert problem.line == len(script.read_text().splitlines())
    assert "cannot be turned off" in problem.reason and "FIPS 201-3" in problem.reason


def test_card_authentication_is_not_a_choice_but_may_be_listed_or_confirmed():
    from tasks.options import TEMP_CARDS_OPTION_FIELDS

    [certificates] = [field for field in TEMP_CARDS_OPTION_FIELDS if field.name == "certificates"]
    assert "Card Authentication" not in certificates.choices
    assert "Card Authentication is always issued" in certificates.help
    assert validate_temp_card_options({**DEFAULTS, "card_authentication": True}) == []
    assert validate_temp_card_options({**DEFAULTS, "certificates": ["Card Authentication"]}) == []
