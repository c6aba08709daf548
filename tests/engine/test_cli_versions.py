"""Versions on the command line: deploy given files, list versions, roll back."""

from __future__ import annotations

import shutil

from engine.config import PROJECT_ROOT
from tests.engine.test_cli import cli  # noqa: F401  (the fixture)


def test_deploy_given_files_then_list_and_roll_back(cli, tmp_path):  # noqa: F811
    assert cli("init").exit_code == 0
    script = tmp_path / "TempCardsScriptOptions"
    shutil.copy(PROJECT_ROOT / "options" / "TempCardsScriptOptions", script)
    script.write_text(script.read_text().replace("pin_length = 6", "pin_length = 8"))
    checked = cli("deploy", "--check", str(script))
    assert checked.exit_code == 0 and checked.output.strip() == "TempCardsScriptOptions valid"
    deployed = cli("deploy", str(script))
    assert deployed.output.strip() == "TempCardsScriptOptions v2 deployed"

    def versions_of_the_script() -> list[str]:
        lines = cli("versions", "--kind", "option").output.splitlines()
        return [line for line in lines if "TempCardsScriptOptions" in line]

    listed = versions_of_the_script()
    assert [line[:2] for line in listed] == ["* ", "  "] and " v2 " in listed[0]  # v2 current
    assert "supervisor_approval.schema.json" in cli("versions", "--kind", "form").output

    rolled = cli("rollback", "option", "TempCardsScriptOptions", "1")
    assert rolled.exit_code == 0 and "v1 is current" in rolled.output
    assert versions_of_the_script()[1].startswith("*")
    again = cli("rollback", "option", "TempCardsScriptOptions", "1")
    assert again.exit_code == 1 and "already the current version" in again.output
    missing = cli("rollback", "process", "TempCardsBoProcIssueMultiple", "9")
    assert missing.exit_code == 1 and "no process TempCardsBoProcIssueMultiple version 9" in missing.output


def test_deploy_of_a_bad_file_names_it_and_changes_nothing(cli, tmp_path):  # noqa: F811
    assert cli("init").exit_code == 0
    form = tmp_path / "broken.schema.json"
    form.write_text("{not json")
    refused = cli("deploy", str(form))
    assert refused.exit_code == 1 and "broken.schema.json" in refused.output
    assert "nothing changed" in refused.output
    assert "broken" not in cli("versions", "--kind", "form").output
