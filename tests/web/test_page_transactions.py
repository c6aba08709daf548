"""A page that only reads begins one database transaction, whatever it draws: the login check,
the header's menus and its content share it (engine.db.shared_reads). Each transaction costs a
session, a checkout and, on PostgreSQL, round trips; pages under 20 operators are made of them."""

from __future__ import annotations

import threading

from sqlalchemy import event


def test_operator_and_auditor_pages_begin_one_transaction_each(login, services, requested_cards):
    op = login()
    instance_id = op.start()
    op.order_page(instance_id)
    auditor = login("aud", "auditor")
    begun = []
    # Only the request's own thread: the runner and the sweeper begin theirs meanwhile.
    here = threading.get_ident()
    event.listen(services.db, "begin", lambda _connection: begun.append(1) if threading.get_ident() == here
                 else None)
    for client, url in ((op, "/batch-orders"), (op, f"/orders/{instance_id}"),
                        (op, f"/orders/{instance_id}?number=TC-00001"), (op, "/cards/TC-000003"),
                        (op, "/search"), (auditor, "/audit/"), (auditor, "/audit/orders")):
        begun.clear()
        assert client.get(url).status_code == 200, url
        assert len(begun) == 1, f"{url} began {len(begun)} transactions"
