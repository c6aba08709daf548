"""The ``cardflow`` command: one click command per admin action, all built on ``bootstrap``."""

from __future__ import annotations

import json
import os
import signal
import sys
from functools import cached_property
from pathlib import Path

import click
from sqlalchemy.exc import OperationalError, ProgrammingError

from engine import audit_commands, bootstrap, holder_commands, user_commands
from engine.config import Settings
from engine.db import make_engine, make_sessions, unit_of_work
from engine.deploy_errors import DeployError
from engine.logs import configure_logging, json_wanted
from engine.users import add_user, random_password
from engine.versions import KINDS, VersionError, list_versions
from engine.versions import rollback as versions_rollback
from tasks.cardsdk import commands as cardsdk_commands
from tasks.cardsdk.card_identity import CardIdentityConfigError
from tasks.cardsdk.pki_config import PkiConfigError


class CliContext:
    """Settings now; the services (database, runner, station) only when a command needs them."""

    def __init__(self) -> None:
        self.settings = Settings.from_env()
        self.settings.ensure_instance()

    @property
    def instance_path(self):
        """The instance folder (database, keys, spool)."""
        return self.settings.instance_path

    @cached_property
    def sessions(self):
        """A session factory on the configured database."""
        return make_sessions(make_engine(self.settings.database_url))

    @cached_property
    def services(self) -> bootstrap.Services:
        """The wired product."""
        return bootstrap.build_services(self.settings)

    def close(self) -> None:
        """Stop what the command started (runner threads, connections)."""
        if "services" in self.__dict__:
            self.services.close()
        if "sessions" in self.__dict__:
            self.sessions.kw["bind"].dispose()


class CardflowGroup(click.Group):
    """Turns a database that is missing or not initialised into one clear line, not a trace."""

    def invoke(self, ctx: click.Context):
        """Run the command; database errors become a ClickException naming the fix."""
        try:
            return super().invoke(ctx)
        except (OperationalError, ProgrammingError) as error:
            reason = str(error.orig).splitlines()[0] if error.orig else str(error)
            raise click.ClickException(f"the database is not ready ({reason}); run 'cardflow init' "
                                       "and check CARDFLOW_DATABASE_URL") from None
        except PkiConfigError as error:  # CARDFLOW_PUBLIC_BASE_URL or the certificate profiles file
            raise click.ClickException(str(error)) from None
        except CardIdentityConfigError as error:  # CARDFLOW_FASCN_AGENCY_CODE or _SYSTEM_CODE
            raise click.ClickException(str(error)) from None


@click.group(cls=CardflowGroup)
@click.pass_context
def main(ctx: click.Context) -> None:
    """cardflow: issue temporary smart cards from BPMN workflows."""
    if ctx.invoked_subcommand in ("run", "demo", "worker"):  # CARDFLOW_LOG_FORMAT=json|text (default)
        try:
            configure_logging(json=json_wanted(dict(os.environ)))
        except ValueError as error:
            raise click.ClickException(str(error)) from None
    ctx.obj = CliContext()
    ctx.call_on_close(ctx.obj.close)


def _deploy(services: bootstrap.Services, actor: str, check_only: bool, paths: tuple[Path, ...] = (),
            missing_only: bool = False) -> None:
    try:
        lines = bootstrap.deploy(services, actor, check_only=check_only, paths=list(paths),
                                 missing_only=missing_only)
    except DeployError as error:
        raise click.ClickException(f"deploy refused, nothing changed:\n{error}") from None
    for line in lines:
        click.echo(line)


main.add_command(cardsdk_commands.virtual_card)
main.add_command(cardsdk_commands.ca)
main.add_command(user_commands.user)
main.add_command(audit_commands.audit)
main.add_command(holder_commands.holders)


@main.command()
@click.pass_obj
def init(obj: CliContext) -> None:
    """Create or upgrade the database, set up the local CA, deploy processes/, forms/, options/."""
    _prepare(obj)
    _deploy(obj.services, "cardflow init", check_only=False)


def _prepare(obj: CliContext) -> None:
    """Create or upgrade the database and set up the local CA when there is none."""
    from tasks.cardsdk.ca import KEY_FILE, LocalCA, ca_folder

    bootstrap.init_database(obj.settings)
    click.echo(f"database ready: {obj.settings.database_url.split('://')[0]}")
    if not (ca_folder(obj.instance_path) / KEY_FILE).exists():
        LocalCA.init(ca_folder(obj.instance_path), obj.settings.ca_passphrase,
                     config=bootstrap.load_pki_config(obj.settings))
        click.echo("local CA created")


@main.command()
@click.option("--check", is_flag=True, help="Validate only; deploy nothing.")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def deploy(obj: CliContext, check: bool, paths: tuple[Path, ...]) -> None:
    """Validate and deploy PATHS (.bpmn processes, .json forms, option scripts), or all of
    processes/, forms/ and options/ when none is given (all or nothing)."""
    _deploy(obj.services, "cardflow deploy", check_only=check, paths=paths)


@main.command()
@click.option("--kind", type=click.Choice(sorted(KINDS)), multiple=True,
              help="Only processes, forms or option sets (repeatable).")
@click.pass_obj
def versions(obj: CliContext, kind: tuple[str, ...]) -> None:
    """List every deployed version; '*' marks the one new orders use."""
    with unit_of_work(obj.sessions) as session:
        for each in kind or ("process", "form", "option"):
            for info in list_versions(session, each):
                mark = "*" if info.current else " "
                click.echo(f"{mark} {info.kind:<7} {info.name:<40} v{info.version:<4} "
                           f"{info.content_hash[:12]}  {info.deployed_at:%Y-%m-%d %H:%M}  "
                           f"{info.deployed_by:<20} {info.orders} orders")


@main.command()
@click.argument("kind", type=click.Choice(sorted(KINDS)))
@click.argument("name")
@click.argument("version", type=click.IntRange(1, None))
@click.pass_obj
def rollback(obj: CliContext, kind: str, name: str, version: int) -> None:
    """Make an earlier VERSION of a process, form or option set current for new orders."""
    try:
        with unit_of_work(obj.sessions) as session:
            versions_rollback(session, kind, name, version, actor="cardflow rollback")
    except VersionError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"{name} v{version} is current; running orders keep their version")


@main.command("demo-data")
@click.option("--requested", type=click.IntRange(1, 1_000_000), required=True,
              help="How many requested cards to add.")
@click.pass_obj
def demo_data(obj: CliContext, requested: int) -> None:
    """Add requested temporary cards to issue."""
    from tasks.demo import add_requested_cards

    with unit_of_work(obj.sessions) as session:
        added = add_requested_cards(session, requested, obj.settings.organisation)
    click.echo(f"{added} requested cards added")


@main.command()
@click.option("--state", help="Only cards in this state.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.pass_obj
def cards(obj: CliContext, state: str | None, as_json: bool) -> None:
    """List cards with their state."""
    from tasks.cards import CardState
    from tasks.queries import list_cards

    if state and state not in set(CardState):
        raise click.ClickException(f"unknown state {state!r}; states: {', '.join(CardState)}")
    with unit_of_work(obj.sessions) as session:
        rows = [{"number": c.number, "state": c.state, "requested_at": c.requested_at.isoformat()}
                for c in list_cards(session, state)]
    if as_json:
        click.echo(json.dumps(rows))
    else:
        for row in rows:
            click.echo(f"{row['number']}\t{row['state']}")


def _attach_virtual_card(ctx: click.Context, obj: CliContext) -> None:
    """Start pcscd (when not running) and the virtual card process; encode through them."""
    from engine.config import StationSettings
    from tasks.cardsdk.piv.testbed import PcscTestbed

    # Blank cards of the configured card stock, so the encoder and the card agree on its behaviour.
    profile = obj.settings.station.profile
    bed = PcscTestbed(obj.instance_path / "virtual-card", profile=profile)
    try:
        bed.start()
    except (OSError, RuntimeError) as error:
        raise click.ClickException(f"pcscd with the virtual card did not start: {error}") from None
    ctx.call_on_close(bed.stop)
    # Stopped by a service manager (SIGTERM), still stop pcscd and the virtual card we started.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(0))
    obj.settings.station = StationSettings(name="virtual-pcsc", transport="pcsc", reader="Virtual PCD*",
                                           profile=profile, virtual_card_state=bed.state_file)
    click.echo("encoding through pcscd, reader Virtual PCD 00 00")


def _serve(obj: CliContext, host: str, port: int, processes: int = 1) -> None:
    from waitress import serve

    from engine import web_processes
    from engine.bootstrap import warm_up_station
    from engine.warm_start import freeze_startup_heap, ready_to_serve
    from engine.web.app import create_app

    app = create_app(obj.settings, obj.services)
    warm_up_station(obj.services)
    if processes > 1:  # the host serves no page: only its heap is worth freezing
        freeze_startup_heap()
    else:
        ready_to_serve(app)
    click.echo(f"cardflow serving on http://{host}:{port}/"
               + (f" from {processes} processes" if processes > 1 else ""))
    if processes > 1:
        web_processes.serve(app, obj.services, host, port, processes)
    else:
        serve(app, host=host, port=port, threads=web_processes.THREADS, ident="cardflow")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, type=click.IntRange(1, 65535), show_default=True)
@click.option("--processes", default=1, show_default=True, type=click.IntRange(1, 32),
              help="Processes serving pages, about one a core. With more than one, the process "
                   "that starts them serves none: it runs the engine and the station for them.")
@click.pass_obj
def run(obj: CliContext, host: str, port: int, processes: int) -> None:
    """Serve the web console."""
    _serve(obj, host, port, processes)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, type=click.IntRange(1, 65535), show_default=True)
@click.option("--requested", default=200, show_default=True, help="Requested cards to create if none exist.")
@click.option("--pcsc", is_flag=True,
              help="Encode through pcscd and the virtual card process instead of in-process.")
@click.pass_context
def demo(ctx: click.Context, host: str, port: int, requested: int, pcsc: bool) -> None:
    """Initialise, create demo users and cards on first run, and serve: the embedded default.

    Only the shipped processes, forms and options the database has no version of are deployed,
    so a restart keeps whatever an admin deployed or rolled back to in the console."""
    from tasks.queries import list_cards

    obj: CliContext = ctx.obj
    if pcsc:
        _attach_virtual_card(ctx, obj)
    _prepare(obj)
    _deploy(obj.services, "cardflow demo", check_only=False, missing_only=True)
    with unit_of_work(obj.sessions) as session:
        first_run = not list_cards(session)
    if first_run:
        ctx.invoke(demo_data, requested=requested)
        with unit_of_work(obj.sessions) as session:
            for name, role in (("operator", "operator"), ("admin", "admin"), ("auditor", "auditor")):
                password = random_password(name)
                add_user(session, name, role, password, actor="cardflow demo")
                # Shown once, on the terminal of whoever started the demo; stored only hashed.
                click.echo(f"demo login: {name} / {password}")
    _serve(obj, host, port)


@main.command()
@click.option("--station", "station", required=True,
              help="The station this process runs (a name of CARDFLOW_STATIONS_FILE).")
@click.option("--concurrency", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Threads producing cards and running engine steps at once.")
@click.pass_obj
def worker(obj: CliContext, station: str, concurrency: int) -> None:
    """Run a station worker on the broker (CARDFLOW_BROKER_URL, default redis://127.0.0.1:6379/0)."""
    from engine.station_worker import WorkerConfigError, run_worker

    try:
        code = run_worker(obj.settings, station, concurrency)
    except WorkerConfigError as error:
        raise click.ClickException(str(error)) from None
    if code:
        sys.exit(code)
