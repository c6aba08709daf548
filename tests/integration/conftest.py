"""Integration tests run the real process on both databases the product supports."""

from __future__ import annotations

import pytest

from tests.conftest import make_settings


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request, tmp_path):
    """A fresh instance on SQLite, then on the CI PostgreSQL server (a schema of its own)."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    return make_settings(tmp_path / "instance", url)
