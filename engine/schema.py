"""Creating and upgrading the database schema with Alembic (never ``create_all`` in production)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, MetaData

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _config(connection, metadata: Sequence[MetaData]) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    config.attributes["target_metadata"] = list(metadata)
    return config


def upgrade(engine: Engine, metadata: Sequence[MetaData]) -> None:
    """Bring the database to the newest schema revision."""
    with engine.begin() as connection:
        command.upgrade(_config(connection, metadata), "head")


def make_revision(engine: Engine, metadata: Sequence[MetaData], message: str) -> None:
    """Write a new migration from the difference between the models and the database (developers)."""
    with engine.begin() as connection:
        command.revision(_config(connection, metadata), message=message, autogenerate=True)
