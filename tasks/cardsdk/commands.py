"""Click commands of the Card SDK, attached to the ``cardflow`` CLI by the lead's bootstrap.

They read ``click.get_current_context().obj`` (``instance_path``, ``sessions``, ``settings``)
and stay thin: the work is done by ``tasks.cardsdk.ca`` and ``tasks.cardsdk.piv.vpcd``.
"""

from __future__ import annotations

from pathlib import Path

import click

from tasks.cardsdk.ca import LocalCA, ca_folder
from tasks.cardsdk.job import CardSdkError
from tasks.cardsdk.piv import vpcd


@click.command("virtual-card")
@click.option("--port", default=vpcd.DEFAULT_PORT, show_default=True, help="Port of pcscd's vpcd driver.")
@click.option("--state-file", type=click.Path(dir_okay=False, path_type=Path), help="Keep the card here.")
@click.option("--fresh", is_flag=True, help="Start with a blank card instead of the saved one.")
def virtual_card(port: int, state_file: Path | None, fresh: bool) -> None:
    """Run a virtual PIV card in pcscd's "Virtual PCD 00 00" reader until stopped.

    Send SIGUSR1 to swap in a fresh blank card (the old one is removed); SIGTERM stops.
    """
    vpcd.run(port, state_file, fresh)


@click.group("ca")
def ca() -> None:
    """Manage the local certificate authority."""


@ca.command("init")
def ca_init() -> None:
    """Create the CA key (encrypted with the configured passphrase) and certificate."""
    obj = click.get_current_context().obj
    try:
        path = LocalCA.init(ca_folder(obj.instance_path), obj.settings.ca_passphrase)
    except CardSdkError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"CA certificate written to {path}")


@ca.command("crl")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the CRL here (PEM).")
def ca_crl(out: Path | None) -> None:
    """Print (or write) the current certificate revocation list."""
    obj = click.get_current_context().obj
    try:
        pem = LocalCA(ca_folder(obj.instance_path), obj.settings.ca_passphrase, obj.sessions).crl()
    except CardSdkError as error:
        raise click.ClickException(str(error)) from None
    if out is None:
        click.echo(pem.decode(), nl=False)
    else:
        out.write_bytes(pem)
        click.echo(f"CRL written to {out}")
