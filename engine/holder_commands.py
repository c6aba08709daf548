"""``cardflow holders import FILE.csv``: add or update the people who get cards, audited."""

from __future__ import annotations

from pathlib import Path

import click

from engine.db import unit_of_work
from engine.store import AuditEvent
from tasks.holders import MAX_FILE_BYTES, HolderImportError, import_holders, read_holders_csv

# How many changed identifiers the audit entry names (the count is always there).
AUDITED_IDENTIFIERS = 100


@click.group()
def holders() -> None:
    """Manage holders (the people who get temporary cards)."""


@holders.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.pass_obj
def holders_import(obj, file: Path) -> None:
    """Add or update holders from FILE (CSV UTF-8, header identifier,name,email,unit); all or
    nothing: a bad line is reported with its number and nothing of the file is imported."""
    try:
        with file.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise click.ClickException(f"cannot read {file}: {error.strerror}; nothing was imported") from None
    try:
        rows = read_holders_csv(data)
    except HolderImportError as error:
        raise click.ClickException(f"{file.name}: {error}") from None
    with unit_of_work(obj.sessions) as session:
        report = import_holders(session, rows)
        if report.added or report.changed:
            session.add(AuditEvent(actor="cardflow holders import", action="holders imported", detail={
                "file": file.name[:200], "added": report.added, "changed": report.changed,
                "unchanged": report.unchanged,
                "changed_identifiers": report.changed_identifiers[:AUDITED_IDENTIFIERS]}))
    click.echo(f"{report.added} holders added, {report.changed} changed, {report.unchanged} unchanged")
