"""What a server process does once, after it built everything and before it serves a page.

- It compiles every page template. Jinja compiles a template when a page first needs it: the
  first order step a process drew took 264 ms instead of 16, 200 of them compiling, and with
  several page processes each paid it, in the slow tail of pages under load.
- It freezes what start-up built. A server holds about 190,000 objects from its start (modules,
  mapped tables, parsed processes, compiled templates, the app) that live as long as it does.
  Each full garbage collection walked them all: about 150 ms during which no thread of the
  process ran, so every page in flight waited as long. Frozen (``gc.freeze``), they are never
  walked again; a full collection walks the objects of requests only, about 6,000.
"""

from __future__ import annotations

import gc

from flask import Flask
from jinja2 import Environment

from engine.forms.schema_form import form_templates


def ready_to_serve(app: Flask) -> int:
    """Compile the page templates, then freeze the start-up heap; returns the objects frozen."""
    for environment in (app.jinja_env, form_templates()):
        compile_templates(environment)
    return freeze_startup_heap()


def compile_templates(environment: Environment) -> int:
    """Compile (and cache) every template ``environment`` can load; returns how many."""
    names = environment.list_templates(extensions=("html",))
    for name in names:
        environment.get_template(name)
    return len(names)


def freeze_startup_heap() -> int:
    """Collect what start-up left over, then freeze the rest; returns how many were frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
