"""The composition root: builds the database, the Card SDK station, the handlers and the runtime
from settings, and wires ``tasks``' handlers into the engine's service registry.

The web app factory, the CLI and the tests all build the product through ``build_services``.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, or_, select
from sqlalchemy.orm import Session, sessionmaker

import tasks.cardsdk.records  # noqa: F401  (registers the Card SDK's tables on the metadata)
from engine import schema
from engine.audit_signing import HeadSigner
from engine.config import Settings
from engine.db import make_engine, make_sessions, read_only, unit_of_work
from engine.deployment import deploy_all, deploy_files
from engine.domain_audit import wire_domain_audit
from engine.forms.widgets import WidgetRegistry
from engine.jobs import InProcessJobs, JobDeferred, Jobs
from engine.leases import InstanceBusy
from engine.runner import Runner
from engine.runtime import Runtime, post_message, withdraw_messages
from engine.services import ServiceRegistry
from engine.store import Base as EngineBase
from engine.store import Instance, utcnow
from engine.sweeper import Sweeper
from engine.web.widgets_cards import register_card_widgets
from engine.web.widgets_holders import register_holder_widgets
from tasks import production as card_production
from tasks.assign_options import ASSIGN_OPTION_FIELDS, ASSIGN_OPTIONS, validate_assign_options
from tasks.card_holds import release_holds
from tasks.card_life import REQUEST_OPTION_FIELDS, REQUEST_OPTIONS, ExpirySweep, validate_request_options
from tasks.cardsdk.pki_config import PkiConfig
from tasks.cardsdk.pki_config import load as load_certificate_profiles
from tasks.cardsdk.station import Station
from tasks.cardsdk.stations import build_station
from tasks.handlers import build_handlers
from tasks.options import TEMP_CARDS_OPTION_FIELDS, TEMP_CARDS_OPTIONS, validate_temp_card_options
from tasks.orders import abandon as abandon_order
from tasks.production import PRODUCE_CARD, ProductionContext, StationPaused
from tasks.store import Base as TasksBase

log = logging.getLogger(__name__)

METADATA = (EngineBase.metadata, TasksBase.metadata)
OPTION_VALIDATORS = {TEMP_CARDS_OPTIONS: validate_temp_card_options, ASSIGN_OPTIONS: validate_assign_options}
# How the admin's options page draws each option set's known options.
OPTION_FIELDS = {TEMP_CARDS_OPTIONS: TEMP_CARDS_OPTION_FIELDS, ASSIGN_OPTIONS: ASSIGN_OPTION_FIELDS}
OPTION_VALIDATORS[REQUEST_OPTIONS] = validate_request_options
OPTION_FIELDS[REQUEST_OPTIONS] = REQUEST_OPTION_FIELDS



@dataclass
class Services:
    """Everything a running cardflow has; ``close`` stops the job host and the connections."""

    settings: Settings
    db: Engine
    sessions: sessionmaker[Session]
    registry: ServiceRegistry
    runtime: Runtime
    # The job host: InProcessJobs (the embedded default) or CeleryJobs (a broker is configured).
    runner: object
    station: Station
    production: ProductionContext
    sweeper: Sweeper

    def close(self) -> None:
        """Stop sweeping, let running jobs finish, then close the database connections."""
        self.sweeper.stop()
        self.runner.close()
        self.db.dispose()


def worker_id(station: str) -> str:
    """Who holds a claim: the station and the process, as an operator would look them up."""
    return f"{station}@{socket.gethostname()}:{os.getpid()}"


def build_services(settings: Settings,
                   station_factory: Callable[[sessionmaker[Session]], Station] | None = None,
                   in_process: bool | None = None, sweep: bool = True,
                   jobs_factory: Callable[[Callable[[str], bool]], Jobs] | None = None) -> Services:
    """Wire the product together for ``settings`` (the database must already be initialised).

    ``station_factory`` replaces the configured station (a test's card stock, say). Work runs in
    this process unless a broker is configured (``in_process`` overrides), or where
    ``jobs_factory`` sends it (given the instance idle check; a page process of ``cardflow run
    --processes N``); ``sweep`` starts the sweeper that takes over what dead hosts left (a station
    worker starts its own).
    """
    settings.ensure_instance()
    db = make_engine(settings.database_url)
    sessions = make_sessions(db)
    wire_domain_audit(sessions)
    if station_factory is not None:
        station = station_factory(sessions)
    else:
        station = build_station(settings.station, settings.instance_path, settings.ca_passphrase,
                                settings.custody_key, sessions, pki=load_pki_config(settings))
    jobs_box: list = []
    production = ProductionContext(
        sessions, station, settings.spool_path, settings.organisation, user="",
        enqueue=lambda queue, kind, args: jobs_box[0].external(queue, kind, args),
        post_message=post_message, withdraw_messages=withdraw_messages,
        advance=lambda instance_id: jobs_box[0].advance(instance_id),
        worker=worker_id(station.name), pool=settings.station.pool, claim_seconds=settings.claim_seconds)
    registry = ServiceRegistry(build_handlers(sessions, production))
    runtime_box: list[Runtime] = []
    if jobs_factory is not None:
        jobs = jobs_factory(lambda iid: instance_idle(sessions, iid))
    elif in_process if in_process is not None else not settings.broker_url:
        runner = Runner(lambda instance_id: runtime_box[0].advance(instance_id),
                        threads=settings.runner_threads, retry_on=(InstanceBusy,))
        jobs = InProcessJobs(runner, external_jobs(production), idle=lambda iid: instance_idle(sessions, iid))
    else:
        from engine.celery_jobs import CeleryJobs

        jobs = CeleryJobs(settings.broker_url, idle=lambda iid: instance_idle(sessions, iid))
    jobs_box.append(jobs)
    runtime = Runtime(sessions, registry, jobs.advance, on_cancel=abandon_order,
                      sign_head=HeadSigner.from_settings(settings).sign, on_end=release_holds)
    runtime_box.append(runtime)
    sweeper = Sweeper(sweeps(runtime, production, jobs, station_host=isinstance(jobs, InProcessJobs)),
                      settings.sweep_seconds)
    services = Services(settings, db, sessions, registry, runtime, jobs, station, production, sweeper)
    if sweep:
        sweeper.start()
    return services


def external_jobs(production: ProductionContext) -> dict[str, Callable[[dict], None]]:
    """The external jobs a station host runs, by kind."""

    def produce_card(args: dict) -> None:
        try:
            card_production.produce_card(production, int(args["order_id"]), int(args["card_id"]))
        except StationPaused:
            raise JobDeferred(5.0) from None

    return {PRODUCE_CARD: produce_card}


def instance_idle(sessions: sessionmaker[Session], instance_id: str) -> bool:
    """Whether the instance waits for a person or has ended (nothing for a job host to do).

    Polled while a page waits for the engine (``wait``), so it takes no write lock. Called from
    posts, never inside a page's shared read: it must see the engine's latest commit."""
    with read_only(sessions) as session:
        row = session.execute(select(Instance.status, Instance.waiting_for,
                                     or_(Instance.locked_by.is_(None), Instance.locked_until < utcnow()))
                              .where(Instance.id == instance_id)).first()
    if row is None or row[0] != "running":
        return True
    # The host that saved the user task lets go of the lease a moment later.
    return row[1] == "user" and bool(row[2])


def sweeps(runtime: Runtime, production: ProductionContext, jobs, station_host: bool) -> dict:
    """What every host does every few seconds, so any survivor takes over a dead host's work."""

    def resume_stalled() -> None:
        for instance_id, host_died in runtime.stalled():
            if host_died:
                runtime.record_resume(instance_id, "its host stopped mid-step (crash or kill)")
            jobs.advance(instance_id)

    def deliver_messages() -> None:
        for instance_id in runtime.with_messages():
            jobs.advance(instance_id)

    work = {
        "stalled instances": resume_stalled,
        "undelivered messages": deliver_messages,
        "lapsed claims": lambda: card_production.reap_lapsed_claims(production),
        "revocations": lambda: card_production.drain_revocations(production),
        "lost jobs": lambda: card_production.redispatch_lost_jobs(production, jobs.depth),
        # Cards whose validity ended become expired: a sweep, not a timer per card (docs/ARCHITECTURE.md).
        "card expiry": ExpirySweep(production.sessions),
    }
    if station_host:
        work["station heartbeat"] = lambda: card_production.heartbeat(production)
    ca = getattr(production.station.encoder, "ca", None)
    if hasattr(ca, "refresh_crl"):  # a local CA signs a new CRL before the current one's nextUpdate
        work["revocation list"] = ca.refresh_crl
    return work


def load_pki_config(settings: Settings) -> PkiConfig:
    """The CA's certificate profiles and public URLs; PkiConfigError (a ValueError) says what is wrong."""
    return load_certificate_profiles(settings.certificate_profiles, settings.public_base_url)


def published_widgets() -> WidgetRegistry:
    """The widgets forms may name; deploy refuses a form that names any other."""
    registry = WidgetRegistry()
    register_card_widgets(registry)
    register_holder_widgets(registry)
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
           paths: Sequence[Path] | None = None, missing_only: bool = False) -> list[str]:
    """Validate and deploy ``paths`` (default: processes/, forms/ and options/ of the source
    folder), all or nothing; with ``missing_only`` (the source folder), only what the database
    has no version of yet."""
    operators, widgets = services.registry.names(), published_widgets().names()
    with unit_of_work(services.sessions) as session:
        if paths:
            return deploy_files(session, paths, operators, OPTION_VALIDATORS, actor, check_only=check_only,
                                widgets=widgets)
        return deploy_all(session, services.settings.source_path, operators, OPTION_VALIDATORS, actor,
                          check_only=check_only, widgets=widgets, missing_only=missing_only)


def warm_up_station(services: Services) -> None:
    """A server that is its own station (the in-process runner) gets ready for its first card
    when it starts, so the first order of the day is not a second late (tasks.cardsdk.drawing)."""
    if isinstance(services.runner, InProcessJobs):
        services.station.warm_up()


def resume_pending(services: Services) -> int:
    """What a host does when it starts (a web server with the in-process runner, a worker):
    take over its previous process's cards and instances at once, not after their leases.

    Instances that wait for a person or for their cards need nothing; the others are audited:
    it is how a crash in the middle of an order shows. Returns the instances resumed.
    """
    card_production.reap_lapsed_claims(services.production, previous_process=True)
    if isinstance(services.runner, InProcessJobs):  # this process's queue died with it
        card_production.redispatch_lost_jobs(services.production, services.runner.depth, quiet_seconds=0)
    pending = [instance_id for instance_id, _host_died in services.runtime.stalled(older_than=0)]
    for instance_id in pending:
        services.runtime.record_resume(instance_id, "a stop or crash of the process that ran it")
        services.runner.advance(instance_id)
    return len(pending)
