"""PINs, PUKs and card management keys never reach a log, the audit trail, workflow data, a
table in clear, or a page: an order is produced through the console with every log recorded,
then every place is searched for the generated values."""

from __future__ import annotations

import json
import logging
import re

from sqlalchemy import select, text

from engine.db import unit_of_work
from engine.store import AuditEvent, Instance
from tasks.cardsdk.records import CustodySecret
from tests.web.console_steps import issue


def test_generated_secrets_appear_nowhere(login, services, requested_cards, caplog):
    caplog.set_level(logging.DEBUG)
    op = login()
    instance_id = op.start()
    issue(op, instance_id, [10, 11])
    op.submit(instance_id, {"action": "next"})
    pages = [op.order_page(instance_id)]
    pages += [op.get(url).get_data(as_text=True) for url in
              ("/batch-orders", "/cards/TC-000010", "/cards/TC-000011", f"/orders/{instance_id}/status")]
    op.submit(instance_id, {"action": "complete", "confirm_ok": "true"})
    pages.append(op.order_page(instance_id))

    custody = services.station.encoder.custody
    secrets = []
    for card_id in (10, 11):
        released = custody.release(card_id)
        assert len(released["pin"]) == 6 and len(released["puk"]) == 8
        secrets += [released["pin"], released["puk"], custody.management_key(card_id).hex()]

    with unit_of_work(services.sessions) as session:
        workflow = session.get(Instance, instance_id).state
        audit = json.dumps([(a.action, a.detail) for a in session.scalars(select(AuditEvent))], default=str)
        # Every table's every row as text, except custody's ciphertexts (checked below).
        tables = [str(row) for name in ("cards", "card_events", "orders", "order_cards",
                                        "production_attempts", "issued_certificates", "audit_events")
                  for row in session.execute(text(f"SELECT * FROM {name}"))]  # noqa: S608 - fixed names
        ciphertexts = [bytes(c.ciphertext) for c in session.scalars(select(CustodySecret))]
    assert "Initialized workflow" in caplog.text  # the logs, at DEBUG, were captured
    # Each record with everything attached to it (extras such as task data included).
    logs = "\n".join(str(record.__dict__) for record in caplog.records)
    places = {"logs": logs, "workflow state": workflow, "audit trail": audit, "tables": "\n".join(tables),
              "pages": "\n".join(pages)}
    for secret in secrets:
        # A secret counts as a whole token: a 6-digit PIN also occurs inside timestamps and UUIDs
        # of the log records by chance, which is no leak.
        token = re.compile(rf"(?<![0-9A-Fa-f]){secret}(?![0-9A-Fa-f])")
        for place, content in places.items():
            assert not token.search(content), f"a generated secret appears in the {place}"
        assert all(secret.encode() not in blob for blob in ciphertexts)
