"""Pages that only read are served while another connection holds SQLite's write lock (production
writing a card, say): they take no write lock of their own, so they never queue behind a writer."""

from __future__ import annotations

import sqlite3
import time
from contextlib import contextmanager

import pytest

from tests.conftest import make_settings


@pytest.fixture
def settings(tmp_path):
    """SQLite only: the write lock is SQLite's (PostgreSQL readers never wait for writers)."""
    return make_settings(tmp_path / "instance")


@contextmanager
def write_lock_held(services):
    """Another connection holds SQLite's write lock for the block (production writing a card)."""
    writer = sqlite3.connect(services.settings.database_url.removeprefix("sqlite:///"), isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def assert_served(client, url: str, shows: str) -> None:
    """The page answers at once, in full; one waiting for the lock would wait the busy timeout (30 s)."""
    began = time.monotonic()
    page = client.get(url)
    assert time.monotonic() - began < 5, url
    assert page.status_code == 200 and shows in page.get_data(as_text=True), url


def test_operator_and_auditor_pages_are_served_while_a_writer_holds_the_lock(login, services,
                                                                             requested_cards):
    op = login()
    instance_id = op.start()
    op.order_page(instance_id)
    auditor = login("aud", "auditor")
    with write_lock_held(services):
        for client, url, shows in ((op, "/batch-orders", "Search cards"),
                                   (op, f"/orders/{instance_id}?number=TC-00001", "TC-000010"),
                                   (op, f"/orders/{instance_id}/status", "Search cards"),
                                   (op, "/cards/TC-000003", "TC-000003"),
                                   (auditor, "/audit/", "login"),
                                   (auditor, "/audit/orders", "op")):
            assert_served(client, url, shows)


def test_admin_pages_and_health_checks_are_served_while_a_writer_holds_the_lock(login, services):
    admin = login("adm", "admin")
    process = "TempCardsBoProcIssueMultiple"
    with write_lock_held(services):
        for url, shows in (("/admin/", process),
                           (f"/admin/process/{process}/source", "bpmn:process"),
                           (f"/admin/process/{process}/diff", process),
                           (f"/admin/processes/{process}/diagram", process),
                           (f"/admin/processes/{process}/modeler", process),
                           (f"/admin/processes/{process}/xml", "bpmn:process"),
                           ("/admin/forms/search_cards", "search_cards"),
                           ("/admin/users", "adm"),
                           ("/admin/stations", "Stations"),
                           ("/healthz", "database"),
                           ("/metrics", "cardflow")):
            assert_served(admin, url, shows)
