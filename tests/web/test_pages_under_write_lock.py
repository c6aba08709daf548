"""Pages that only read are served while another connection holds SQLite's write lock (production
writing a card, say): they take no write lock of their own, so they never queue behind a writer."""

from __future__ import annotations

import sqlite3
import time

import pytest

from tests.conftest import make_settings


@pytest.fixture
def settings(tmp_path):
    """SQLite only: the write lock is SQLite's (PostgreSQL readers never wait for writers)."""
    return make_settings(tmp_path / "instance")


def test_operator_and_auditor_pages_are_served_while_a_writer_holds_the_lock(login, services,
                                                                             requested_cards):
    op = login()
    instance_id = op.start()
    op.order_page(instance_id)
    auditor = login("aud", "auditor")
    writer = sqlite3.connect(services.settings.database_url.removeprefix("sqlite:///"), isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        for client, url, shows in ((op, "/batch-orders", "Search cards"),
                                   (op, f"/orders/{instance_id}?number=TC-00001", "TC-000010"),
                                   (op, f"/orders/{instance_id}/status", "Search cards"),
                                   (op, "/cards/TC-000003", "TC-000003"),
                                   (auditor, "/audit/", "login"),
                                   (auditor, "/audit/orders", "op")):
            began = time.monotonic()
            page = client.get(url)
            # A page that waited for the lock would wait the busy timeout (30 s), then fail.
            assert time.monotonic() - began < 5, url
            assert page.status_code == 200 and shows in page.get_data(as_text=True), url
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_admin_pages_and_health_checks_are_served_while_a_writer_holds_the_lock(login, services):
    admin = login("adm", "admin")
    writer = sqlite3.connect(services.settings.database_url.removeprefix("sqlite:///"), isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        process = "TempCardsBoProcIssueMultiple"
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
            began = time.monotonic()
            page = admin.get(url)
            assert time.monotonic() - began < 5, url
            assert page.status_code == 200 and shows in page.get_data(as_text=True), url
    finally:
        writer.execute("ROLLBACK")
        writer.close()
