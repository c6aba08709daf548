"""Option scripts are data: literal assignments are read, anything else is refused unexecuted."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.definitions import DeployError
from engine.option_scripts import parse_option_script, read_option_script

SHIPPED = Path(__file__).resolve().parents[2] / "options" / "TempCardsScriptOptions"


def refusal(text: str) -> tuple[int | None, str]:
    """The line and reason of the single problem an option script is refused for."""
    with pytest.raises(DeployError) as refused:
        parse_option_script(text, "Opts")
    [problem] = refused.value.problems
    assert problem.file == "Opts"
    return problem.line, problem.reason


def test_the_shipped_defaults_parse_with_their_lines():
    script = read_option_script(SHIPPED.read_text(), SHIPPED.name)
    assert script.values == {"pin_length": 6, "puk_length": 8, "encode_card": True,
                             "certificates": ["PIV Authentication"], "validity_days": 14}
    lines = SHIPPED.read_text().splitlines()
    assert all(lines[number - 1].startswith(f"{name} = ") for name, number in script.lines.items())


def test_comments_blank_lines_and_doc_strings_are_allowed():
    text = '"""Options."""\n\n# a comment\nx = -3  # trailing\ny = ["a", "b"]\nz = False\nw = 1.5\n'
    assert parse_option_script(text, "Opts") == {"x": -3, "y": ["a", "b"], "z": False, "w": 1.5}


@pytest.mark.parametrize(("text", "line", "reason"), [
    ('x = 1\nimport os\n', 2, "an import"),
    ('x = 1\n\ny = __import__("os")\n', 3, "a function call"),
    ('x = open("f")\n', 1, "a function call"),
    ('x = 1\nx += 1\n', 2, "augmented assignment"),
    ('x = 1\ny = x\n', 2, "a variable reference"),
    ('x = "".join\n', 1, "an attribute access"),
    ('os.environ = 1\n', 1, "one plain name"),
    ('a = b = 1\n', 1, "one plain name"),
    ('x = 1\ny = 2\nx = 3\n', 3, "already set on line 1"),
    ('x = {"a": 1}\n', 1, "number, string, True/False or a list"),
    ('x = [[1]]\n', 1, "number, string, True/False or a list"),
    ('x = 2 ** 1000\n', 1, "a calculation"),
    ('def f():\n    pass\n', 1, "a function definition"),
    ('print("hi")\n', 1, "a bare expression"),
    ('x = = 1\n', 1, "syntax error"),
    ('_secret = 1\n', 1, "must not start with '_'"),
])
def test_anything_but_literal_assignments_is_refused_with_its_line(text, line, reason):
    assert refusal(text)[0] == line
    assert reason in refusal(text)[1]


def test_refused_code_is_never_executed(tmp_path):
    marker = tmp_path / "ran"
    code = f'x = open({str(marker)!r}, "w").write("x")\ny = __import__("os").mkdir({str(marker)!r})\n'
    with pytest.raises(DeployError) as refused:
        parse_option_script(code, "Opts")
    assert [problem.line for problem in refused.value.problems] == [1, 2]
    assert not marker.exists()
