"""Fixtures for the engine's deployment tests: a fresh database, a project tree, the real BPMN."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from engine.store import Base

REPO = Path(__file__).resolve().parents[2]
FORM_STEMS = ("search_cards", "selected_cards", "review_production")


@pytest.fixture
def session() -> Iterator[Session]:
    """A session on an empty in-memory SQLite database with the engine's tables."""
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as db:
        yield db
    engine.dispose()


@pytest.fixture
def real_bpmn() -> Path:
    """The process the product ships."""
    return REPO / "processes" / "TempCardsBoProcIssueMultiple.bpmn"


@pytest.fixture
def operators() -> frozenset[str]:
    """The service operators the real process needs."""
    return frozenset(
        {"order_open", "cards_reserve", "cards_produce", "cards_repeat", "order_complete", "order_release"}
    )


@pytest.fixture
def forms_dir(tmp_path: Path) -> Path:
    """Minimal valid forms (schema + UI schema) for every form the real process names.

    The real forms/ are written separately; these keep the deploy tests independent of them.
    """
    folder = tmp_path / "forms"
    folder.mkdir()
    for stem in FORM_STEMS:
        (folder / f"{stem}.schema.json").write_text('{"type": "object"}')
        (folder / f"{stem}.uischema.json").write_text("{}")
    return folder


@pytest.fixture
def project(tmp_path: Path, forms_dir: Path, real_bpmn: Path) -> Path:
    """A project root as deploy_all reads it: the real process and options, the minimal forms."""
    (tmp_path / "processes").mkdir()
    shutil.copy(real_bpmn, tmp_path / "processes")
    # The batch order's option script only: the other processes' options have validators of their own.
    (tmp_path / "options").mkdir()
    shutil.copy(REPO / "options" / "TempCardsScriptOptions", tmp_path / "options")
    return tmp_path
