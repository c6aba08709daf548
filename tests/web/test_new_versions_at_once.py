"""A form or process version an admin deploys shows on the next order at once, though pages keep
what they parsed per version; orders already running keep the version they started with."""

from __future__ import annotations

import json

from engine.config import PROJECT_ROOT

NEW_DESCRIPTION = "Find the requested cards to issue today, tick them, then issue them."


def test_a_deployed_form_shows_on_the_next_order_at_once(login, services, requested_cards):
    op = login()
    running = op.start()
    assert "Search the cards in state requested" in op.order_page(running)
    schema = json.loads((PROJECT_ROOT / "forms" / "search_cards.schema.json").read_text())
    schema["description"] = NEW_DESCRIPTION
    ui = (PROJECT_ROOT / "forms" / "search_cards.uischema.json").read_text()
    admin = login("adm", "admin")
    deployed = admin.post("/admin/forms/search_cards", {"schema": json.dumps(schema), "uischema": ui,
                                                        "action": "deploy"})
    assert "TempCardsBoProcIssueMultiple v2 deployed" in deployed.get_data(as_text=True)

    new = op.start()
    assert NEW_DESCRIPTION in op.order_page(new)
    page = op.order_page(running)
    assert "Search the cards in state requested" in page and NEW_DESCRIPTION not in page
    inbox = op.get("/batch-orders").get_data(as_text=True)
    assert inbox.count("Waiting for you: Search cards") == 2
