"""Click commands of the Card SDK, attached to the ``cardflow`` CLI by the lead's bootstrap.

They read ``click.get_current_context().obj`` (``instance_path``, ``sessions``, ``settings``)
and stay thin: the work is done by ``tasks.cardsdk.ca`` and ``tasks.cardsdk.piv.vpcd``.
"""

from __future__ import annotations

from pathlib import Path

import click

from tasks.cardsdk import pki_config
from tasks.cardsdk.ca import LocalCA, ca_folder
from tasks.cardsdk.job import CardSdkError
from tasks.cardsdk.piv import profiles, vpcd


@click.command("virtual-card")
@click.option("--port", default=vpcd.DEFAULT_PORT, show_default=True, help="Port of pcscd's vpcd driver.")
@click.option("--state-file", type=click.Path(dir_okay=False, path_type=Path), help="Keep the card here.")
@click.option("--fresh", is_flag=True, help="Start with a blank card instead of the saved one.")
@click.option("--profile", default=profiles.DEFAULT_PROFILE, show_default=True,
              help="Card profile of the blank cards: a built-in name or a JSON file.")
def virtual_card(port: int, state_file: Path | None, fresh: bool, profile: str) -> None:
    """Run a virtual PIV card in pcscd's "Virtual PCD 00 00" reader until stopped.

    Blank cards behave as the card profile says (retry counts, management key and its commands).
    Send SIGUSR1 to swap in a fresh blank card (the old one is removed); SIGTERM stops.
    """
    try:
        profiles.get(profile)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    vpcd.run(port, state_file, fresh, profile)


@click.group("ca")
def ca() -> None:
    """Manage the local certificate authority."""


def _pki(settings) -> pki_config.PkiConfig:
    """The configured certificate profiles and public base URL; a bad one is a one-line error."""
    try:
        return pki_config.load(getattr(settings, "certificate_profiles", None),
                               getattr(settings, "public_base_url", pki_config.DEFAULT_PUBLIC_BASE_URL))
    except pki_config.PkiConfigError as error:
        raise click.ClickException(str(error)) from None


def _local_ca(obj) -> LocalCA:
    try:
        return LocalCA(ca_folder(obj.instance_path), obj.settings.ca_passphrase, obj.sessions,
                       _pki(obj.settings))
    except CardSdkError as error:
        raise click.ClickException(str(error)) from None


@ca.command("init")
def ca_init() -> None:
    """Create the CA key (encrypted with the configured passphrase) and certificate.

    Its subject and certificate policies come from the certificate profiles
    (CARDFLOW_CERTIFICATE_PROFILES, default: the shipped ones).
    """
    obj = click.get_current_context().obj
    try:
        path = LocalCA.init(ca_folder(obj.instance_path), obj.settings.ca_passphrase,
                            config=_pki(obj.settings))
    except CardSdkError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"CA certificate written to {path}")


@ca.command("crl")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the CRL here (PEM).")
def ca_crl(out: Path | None) -> None:
    """Print (or write) the current certificate revocation list, as the console serves it at /pki/crl."""
    pem = _local_ca(click.get_current_context().obj).crl()
    if out is None:
        click.echo(pem.decode(), nl=False)
    else:
        out.write_bytes(pem)
        click.echo(f"CRL written to {out}")


@ca.command("publish")
def ca_publish() -> None:
    """Sign a new CRL now (the console and the sweep do so on every revocation and before nextUpdate)."""
    number = _local_ca(click.get_current_context().obj).publish_crl()
    click.echo(f"CRL {number} published")


@ca.command("profiles")
def ca_profiles() -> None:
    """Check the certificate profiles file and show what each certificate type gets."""
    config = _pki(click.get_current_context().obj.settings)
    click.echo(f"{config.source}: valid; CRL {config.crl_url}, OCSP {config.ocsp_url}")
    names = {oid: name for name, oid in pki_config.EXTENDED_KEY_USAGES.items()}
    for profile in config.profiles.values():
        usages = ", ".join(names.get(oid, oid.dotted_string) for oid in profile.extended_key_usage)
        critical = " (critical)" if profile.extended_key_usage_critical else ""
        click.echo(f"{profile.name}: slot {profile.slot or '-'}; key usage {', '.join(profile.key_usage)}; "
                   f"extended {usages or '-'}{critical}; names {', '.join(profile.subject_alt_name) or '-'}; "
                   f"policies {', '.join(oid.dotted_string for oid in profile.policies)}")
