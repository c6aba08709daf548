"""The composition root: builds the database, the Card SDK station, the handlers and the runtime
from settings, and wires ``tasks``' handlers into the engine's service registry.

The web app factory, the CLI and the tests all build the product through ``build_services``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

import tasks.cardsdk.records  # noqa: F401  (registers the Card SDK's tables on the metadata)
from engine import schema
from engine.audit_signing import HeadSigner
from engine.config import Settings
from engine.db import make_engine, make_sessions, unit_of_work
from engine.deployment import deploy_all, deploy_files
from engine.domain_audit import wire_domain_audit
from engine.forms.widgets import WidgetRegistry
from engine.leases import InstanceBusy
from engine.runner import Runner
from engine.runtime import Runtime
from engine.services import ServiceRegistry
from engine.store import AuditEvent
from engine.store import Base as EngineBase
from engine.web.widgets_cards import register_card_widgets
from tasks.cardsdk.station import Station
from tasks.cardsdk.stations import build_station
from tasks.handlers import build_handlers
from tasks.options import TEMP_CARDS_OPTION_FIELDS, TEMP_CARDS_OPTIONS, validate_temp_card_options
from tasks.orders import abandon as abandon_order
from tasks.production import ProductionContext
from tasks.store import Base as TasksBase

log = logging.getLogger(__name__)

METADATA = (EngineBase.metadata, TasksBase.metadata)
OPTION_VALIDATORS = {TEMP_CARDS_OPTIONS: validate_temp_card_options}
# How the admin's options page draws each option set's known options.
OPTION_FIELDS = {TEMP_CARDS_OPTIONS: TEMP_CARDS_OPTION_FIELDS}



@dataclass
class Services:
    """Everything a running cardflow has; ``close`` stops the runner and the connections."""

    settings: Settings
    db: Engine
    sessions: sessionmaker[Session]
    registry: ServiceRegistry
    runtime: Runtime
    runner: Runner
    station: Station

    def close(self) -> None:
        """Let running jobs finish, then close the database connections."""
        self.runner.shutdown()
        self.db.dispose()


def build_services(settings: Settings,
                   station_factory: Callable[[sessionmaker[Session]], Station] | None = None) -> Services:
    """Wire the product together for ``settings`` (the database must already be initialised).

    ``station_factory`` replaces the configured station (a test's card stock, say).
    """
    settings.ensure_instance()
    db = make_engine(settings.database_url)
    sessions = make_sessions(db)
    wire_domain_audit(sessions)
    if station_factory is not None:
        station = station_factory(sessions)
    else:
        station = build_station(settings.station, settings.instance_path, settings.ca_passphrase,
                                settings.custody_key, sessions)
    production = ProductionContext(sessions, station, settings.spool_path, settings.organisation, user="")
    registry = ServiceRegistry(build_handlers(sessions, production))
    runtime_box: list[Runtime] = []
    runner = Runner(lambda instance_id: runtime_box[0].advance(instance_id),
                    threads=settings.runner_threads, retry_on=(InstanceBusy,))
    runtime = Runtime(sessions, registry, runner.submit, on_cancel=abandon_order,
                      sign_head=HeadSigner.from_settings(settings).sign)
    runtime_box.append(runtime)
    return Services(settings, db, sessions, registry, runtime, runner, station)


def published_widgets() -> WidgetRegistry:
    """The widgets forms may name; deploy refuses a form that names any other."""
    registry = WidgetRegistry()
    register_card_widgets(registry)
    return registry


def init_database(settings: Settings) -> None:
    """Create or upgrade the schema to the newest migration."""
    settings.ensure_instance()
    db = make_engine(settings.database_url)
    try:
        schema.upgrade(db, METADATA)
    finally:
        db.dispose()


def deploy(services: Services, actor: str, check_only: bool = False,
           paths: Sequence[Path] | None = None) -> list[str]:
    """Validate and deploy ``paths`` (default: processes/, forms/ and options/ of the source
    folder), all or nothing."""
    operators, widgets = services.registry.names(), published_widgets().names()
    with unit_of_work(services.sessions) as session:
        if paths:
            return deploy_files(session, paths, operators, OPTION_VALIDATORS, actor, check_only=check_only,
                                widgets=widgets)
        return deploy_all(session, services.settings.source_path, operators, OPTION_VALIDATORS, actor,
                          check_only=check_only, widgets=widgets)


def resume_pending(services: Services) -> int:
    """Hand every running instance to the runner again: orders interrupted by a stop resume.

    Each resume is audited: it is how a crash or a stop in the middle of an order shows.
    """
    pending = services.runtime.pending_instances()
    with unit_of_work(services.sessions) as session:
        session.add_all(AuditEvent(actor="runner", action="instance resumed", instance_id=instance_id,
                                   detail={"after": "a stop or crash of the process that ran it"})
                        for instance_id in pending)
    for instance_id in pending:
        services.runner.submit(instance_id)
    return len(pending)
