"""Shared fixtures: a configured instance on SQLite, the wired services, users.

Tests build the product through the same factory as the CLI and the web console; they change
configuration through ``Settings``, never by patching globals.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from engine import bootstrap
from engine.config import Settings
from engine.db import unit_of_work
from engine.users import add_user
from tasks.cardsdk.ca import LocalCA, ca_folder
from tasks.cardsdk.piv.testbed import PcscTestbed

POSTGRES_URL = os.environ.get("CARDFLOW_TEST_POSTGRES_URL")


def make_settings(instance: Path, database_url: str | None = None) -> Settings:
    """Settings for a throwaway instance folder (SQLite inside it unless a URL is given)."""
    return Settings(instance_path=instance,
                    database_url=database_url or f"sqlite:///{instance / 'cardflow.db'}",
                    secret_key="test-secret-key", ca_passphrase="test-ca-passphrase",
                    organisation="Test Organisation")


def start_services(settings: Settings) -> bootstrap.Services:
    """Initialise the database and CA, deploy processes/forms/options, and wire the product."""
    bootstrap.init_database(settings)
    LocalCA.init(ca_folder(settings.instance_path), settings.ca_passphrase)
    services = bootstrap.build_services(settings)
    bootstrap.deploy(services, "test")
    return services


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A fresh instance on SQLite."""
    return make_settings(tmp_path / "instance")


@pytest.fixture
def services(settings: Settings) -> Iterator[bootstrap.Services]:
    """The wired product on a fresh, deployed database."""
    services = start_services(settings)
    yield services
    services.close()


@contextmanager
def private_schema(server_url: str, prefix: str = "t") -> Iterator[str]:
    """A fresh schema on the PostgreSQL server at ``server_url``, dropped afterwards; yields the
    URL whose connections use it (tests and benches share one database, never one schema)."""
    schema = f"{prefix}{os.getpid()}_{os.urandom(4).hex()}"
    admin = create_engine(server_url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{server_url}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh schema on the CI PostgreSQL server (CARDFLOW_TEST_POSTGRES_URL), dropped after."""
    if not POSTGRES_URL:
        pytest.fail("CARDFLOW_TEST_POSTGRES_URL is not set; .ci/run sets it for the local PostgreSQL.")
    with private_schema(POSTGRES_URL) as url:
        yield url


@pytest.fixture(scope="module")
def pcsc_testbed(tmp_path_factory) -> Iterator[PcscTestbed]:
    """pcscd (started when none runs) and the virtual card process, for one test module.

    A machine has one pcscd and one vpcd port: test modules that use them take a lock file in
    turn, whichever pytest worker (make test runs -n 3) or pytest run they belong to.
    """
    with open(Path(tempfile.gettempdir()) / "cardflow-pcscd-tests.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        bed = PcscTestbed(tmp_path_factory.mktemp("pcscd"))
        try:  # a start that fails half-way still stops what it started, or the next module inherits it
            bed.start()
            yield bed
        finally:
            bed.stop()


@pytest.fixture
def make_user(services: bootstrap.Services):
    """Create a console user: ``make_user(name, role, password)``."""

    def create(name: str, role: str, password: str = "correct-horse-battery") -> str:
        with unit_of_work(services.sessions) as session:
            add_user(session, name, role, password, actor="test")
        return password

    return create
