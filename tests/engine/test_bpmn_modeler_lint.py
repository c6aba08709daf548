"""The shipped processes lint clean with bpmnlint's recommended rules, as bpmn.io and Camunda
Modeler show them; the linter really runs (installed by `make setup` from tests/bpmnlint/)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from engine.config import PROJECT_ROOT

LINT_DIR = PROJECT_ROOT / "tests" / "bpmnlint"
PROCESSES = sorted((PROJECT_ROOT / "processes").glob("*.bpmn"))


def bpmnlint(path: Path) -> subprocess.CompletedProcess:
    if not (LINT_DIR / "node_modules" / ".bin" / "bpmnlint").exists():
        pytest.fail("bpmnlint is not installed; run `make setup` (npm ci --prefix tests/bpmnlint).")
    return subprocess.run([str(LINT_DIR / "node_modules" / ".bin" / "bpmnlint"), str(path)],
                          cwd=LINT_DIR, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("path", PROCESSES, ids=[p.name for p in PROCESSES])
def test_shipped_process_lints_clean(path):
    result = bpmnlint(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_linter_catches_an_unnamed_task(tmp_path):
    source = (PROJECT_ROOT / "processes" / "TempCardsBoProcIssueMultiple.bpmn").read_text()
    broken = tmp_path / "broken.bpmn"
    broken.write_text(source.replace('name="Produce cards"', "", 1))
    result = bpmnlint(broken)
    assert result.returncode != 0
    assert "label-required" in result.stdout + result.stderr
