"""What a process may start with: a small object of plain JSON values, copied; anything else is
refused with a clear message before anything is stored."""

from __future__ import annotations

import pytest

from engine.runtime import MAX_START_DATA, RuntimeFailure, check_start_data


def test_plain_data_is_copied_through_json():
    card = {"card_id": 7, "number": "TC-000007", "tags": ("a", "b")}
    data = check_start_data({"card": card})
    assert data == {"card": {"card_id": 7, "number": "TC-000007", "tags": ["a", "b"]}}
    card["card_id"] = 8
    assert data["card"]["card_id"] == 7
    assert check_start_data(None) == {}


@pytest.mark.parametrize(("data", "message"), [
    ([1, 2], "an object of named values"),
    ({1: "x"}, "an object of named values"),
    ({"x": float("nan")}, "plain JSON data only"),
    ({"x": b"bytes"}, "plain JSON data only"),
    ({"x": object()}, "plain JSON data only"),
    ({"x": {1, 2}}, "plain JSON data only"),
    ({"x": "a" * MAX_START_DATA}, f"at most {MAX_START_DATA} bytes"),
])
def test_anything_else_is_refused(data, message):
    with pytest.raises(RuntimeFailure, match=message):
        check_start_data(data)


def test_a_deeply_nested_value_is_refused():
    deep: dict = {}
    for _ in range(5000):
        deep = {"x": deep}
    with pytest.raises(RuntimeFailure):
        check_start_data(deep)
