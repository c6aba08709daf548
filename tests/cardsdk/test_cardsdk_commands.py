"""The ca commands work on the instance folder the CLI context names."""

from __future__ import annotations

from types import SimpleNamespace

from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from tasks.cardsdk.ca import LocalCA
from tasks.cardsdk.commands import ca, ca_folder


def test_ca_init_then_crl_lists_revocations(tmp_path, sessions):
    obj = SimpleNamespace(
        instance_path=tmp_path, sessions=sessions, settings=SimpleNamespace(ca_passphrase="cli pass")
    )
    runner = CliRunner()
    result = runner.invoke(ca, ["init"], obj=obj)
    assert result.exit_code == 0 and "ca.pem" in result.output
    again = runner.invoke(ca, ["init"], obj=obj)
    assert again.exit_code != 0 and "refusing to replace" in again.output
    local = LocalCA(ca_folder(tmp_path), "cli pass", sessions)
    issued = local.issue(
        ec.generate_private_key(ec.SECP256R1()).public_key(), "TC-9", "PIV Authentication", 14, "attempt-9"
    )
    local.revoke_attempt("attempt-9", "misprint")
    result = runner.invoke(ca, ["crl", "--out", str(tmp_path / "crl.pem")], obj=obj)
    assert result.exit_code == 0
    crl = x509.load_pem_x509_crl((tmp_path / "crl.pem").read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(issued.serial_number) is not None
    printed = runner.invoke(ca, ["crl"], obj=obj)
    assert printed.output.startswith("-----BEGIN X509 CRL-----")
