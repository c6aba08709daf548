"""A server freezes what it built at start: a full collection then walks only its requests' objects."""

from __future__ import annotations

import gc

from engine.startup_heap import freeze_startup_heap
from engine.web.app import create_app


def test_what_a_server_built_at_start_is_out_of_the_collectors_full_passes(services):
    create_app(services=services)
    tracked = len(gc.get_objects())
    try:
        frozen = freeze_startup_heap()
        assert frozen > tracked // 2 and len(gc.get_objects()) < frozen // 20
        made_since = [[number] for number in range(1000)]  # lists: always tracked
        assert len(gc.get_objects()) >= len(made_since)  # what comes after is collected as ever
    finally:
        gc.unfreeze()
