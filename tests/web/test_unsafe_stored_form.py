"""A form stored before today's checks, which they now refuse, is never fetched or drawn."""

from __future__ import annotations

import json

from sqlalchemy import update

from engine.db import unit_of_work
from engine.store import Definition


def test_a_stored_form_with_a_remote_ref_gives_a_clear_page_and_fetches_nothing(login, services):
    with unit_of_work(services.sessions) as session:
        definition = session.get(Definition, 1)
        forms = dict(definition.forms)
        schema = json.loads(forms["search_cards.schema.json"])
        schema["properties"]["number"] = {"$ref": "http://127.0.0.1:9/evil.json"}
        forms["search_cards.schema.json"] = json.dumps(schema)
        session.execute(update(Definition).where(Definition.id == 1).values(forms=forms))
    op = login()
    instance_id = op.start()
    services.runner.wait(instance_id)
    page = op.get(f"/orders/{instance_id}")
    assert page.status_code == 500
    assert "This step&#39;s form cannot be used" in page.text and "ask an admin" in page.text
    assert "$ref" in page.text and "Traceback" not in page.text
