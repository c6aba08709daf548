"""``cardflow audit ...``: the auditor's commands: verify the trail, sign its head, export it."""

from __future__ import annotations

from pathlib import Path

import click

from engine.audit_export import AuditFilterError, AuditFilters, stream_csv, stream_json
from engine.audit_signing import AuditKeyError, HeadSigner, key_path, load_public_key, public_key_path
from engine.audit_verify import verify_chain
from engine.db import unit_of_work

STREAMS = {"csv": stream_csv, "json": stream_json}


@click.group()
def audit() -> None:
    """Prove what happened: verify the audit trail, sign its head, export entries."""


@audit.command("verify")
@click.option("--public-key", "public_keys", multiple=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="A public key that signed heads (repeatable); default: the .pub file next to the "
                   "signing key.")
@click.pass_obj
def audit_verify(obj, public_keys: tuple[Path, ...]) -> None:
    """Recompute the whole hash chain and check every signed head; exit 1 at the first break."""
    paths = public_keys or (public_key_path(key_path(obj.settings)),)
    try:
        keys = [load_public_key(path) for path in paths if public_keys or path.exists()]
    except AuditKeyError as error:
        raise click.ClickException(str(error)) from None
    report = verify_chain(obj.sessions, keys)
    if report.ok:
        click.echo(report.summary())
        return
    click.echo(f"audit trail BROKEN ({report.entries} entries, {report.heads} signed heads):")
    for problem in report.problems:
        click.echo(f"  {problem.message}")
    if report.unlisted:
        click.echo(f"  ... and {report.unlisted} more signed heads that do not hold")
    raise click.exceptions.Exit(1)


@audit.command("sign")
@click.option("--reason", default="signed on demand (cardflow audit sign)", show_default=True,
              help="Why the head is signed, kept with the signature.")
@click.pass_obj
def audit_sign(obj, reason: str) -> None:
    """Sign the chain's current head with the audit signing key."""
    try:
        signer = HeadSigner.from_settings(obj.settings)
    except AuditKeyError as error:
        raise click.ClickException(str(error)) from None
    with unit_of_work(obj.sessions) as session:
        head = signer.sign(session, reason)
    if head is None:
        click.echo("nothing to sign: the audit trail is empty")
        return
    click.echo(f"signed head: entry {head.entry_id}, hash {head.hash}, key {head.key_id[:16]}..., "
               f"at {head.signed_at:%Y-%m-%d %H:%M:%S} UTC")


@audit.command("export")
@click.option("--format", "kind", type=click.Choice(sorted(STREAMS)), required=True)
@click.option("--card", help="Only entries about this card number.")
@click.option("--order", help="Only entries about this order id.")
@click.option("--user", help="Only entries by this actor (user name, runner, station...).")
@click.option("--action", help="Only entries of this action, such as 'card state changed'.")
@click.option("--since", help="From this ISO 8601 date or time (inclusive; UTC unless a zone is given).")
@click.option("--until", help="Before this ISO 8601 date or time (exclusive).")
@click.option("--output", default="-", type=click.Path(dir_okay=False, allow_dash=True),
              help="Write to this file (whole or not at all) instead of standard output.")
@click.pass_obj
def audit_export(obj, kind: str, card: str | None, order: str | None, user: str | None,
                 action: str | None, since: str | None, until: str | None, output: str) -> None:
    """Stream matching entries, oldest first, as CSV or one JSON array, batch by batch."""
    try:
        filters = AuditFilters.parse(card=card, order=order, user=user, action=action, since=since,
                                     until=until)
    except AuditFilterError as error:
        raise click.UsageError(str(error)) from None
    with click.open_file(output, "wb", atomic=output != "-") as handle:
        for piece in STREAMS[kind](obj.sessions, filters):
            handle.write(piece.encode())
