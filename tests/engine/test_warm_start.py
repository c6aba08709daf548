"""A server readies itself before it serves: its page templates compiled, its start-up heap frozen."""

from __future__ import annotations

import gc

from engine.forms.schema_form import form_templates
from engine.warm_start import ready_to_serve
from engine.web.app import create_app


def test_a_server_compiles_its_templates_and_freezes_what_it_built_before_it_serves(services):
    app = create_app(services=services)
    pages, forms = app.jinja_env, form_templates()
    cached_before = len(pages.cache or {})
    try:
        frozen = ready_to_serve(app)
        assert len(gc.get_objects()) < frozen // 20  # a full collection no longer walks start-up's objects
        made_since = [[number] for number in range(1000)]  # lists: always tracked
        assert len(gc.get_objects()) >= len(made_since)  # what comes after is collected as ever
    finally:
        gc.unfreeze()
    # Every page and form template is compiled: no first visitor of a page waits for it.
    assert len(pages.cache) == len(pages.list_templates(extensions=("html",))) > max(cached_before, 30)
    assert len(forms.cache) == len(forms.list_templates(extensions=("html",))) >= 2
