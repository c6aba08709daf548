"""A misprint's certificates are revoked where relying parties look: openssl fetches the CRL and asks
the OCSP responder over HTTP from the running console, and every issued certificate follows its profile.

The order is real (the BPMN in processes/, misprint and repeat), on SQLite and PostgreSQL; the
console is served by a WSGI server on a free loopback port, which is also the public base URL the
certificates name, so ``openssl verify -crl_download`` finds the CRL through the certificate itself.
"""

from __future__ import annotations

import base64
import subprocess
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID
from sqlalchemy import select, update

from engine.db import unit_of_work
from tasks.cardsdk import pki_config
from tasks.cardsdk.ca import CONTENT_SIGNER_REF, RESPONDER_REF
from tasks.cardsdk.pki_records import PublishedCrl
from tasks.cardsdk.records import IssuedCertificate
from tests.integration.pki_console import copy_sources, misprinted_order_console

ALL_TYPES = '["PIV Authentication", "Digital Signature", "Key Management", "Card Authentication"]'
MISPRINT = "colour stripe across the photo area"


@pytest.fixture
def console(settings, tmp_path):
    """An order of two cards with all four certificates; card 2 misprinted and produced again;
    the console serving on the port its certificates name. Yields (services, base URL, oid)."""
    source = copy_sources(tmp_path / "source")
    script = source / "options" / "TempCardsScriptOptions"
    script.write_text(script.read_text().replace('certificates = ["PIV Authentication"]',
                                                 f"certificates = {ALL_TYPES}"))
    settings.source_path = source
    with misprinted_order_console(settings, MISPRINT) as (services, oid):
        yield services, settings.public_base_url, oid


def rows(services, **where) -> list[IssuedCertificate]:
    with unit_of_work(services.sessions) as session:
        query = select(IssuedCertificate).order_by(IssuedCertificate.id)
        for column, value in where.items():
            query = query.where(getattr(IssuedCertificate, column) == value)
        return list(session.scalars(query))


def card_certificate(services, oid: int, attempt: int, kind: str = "PIV Authentication") -> IssuedCertificate:
    [row] = rows(services, attempt_ref=f"order-{oid}/card-2/attempt-{attempt}", certificate_type=kind)
    return row


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200
        return response.read()


def run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_openssl_rejects_the_misprint_and_accepts_its_replacement_with_the_crl_from_the_console(
        console, tmp_path):
    services, base, oid = console
    ca_der = fetch(f"{base}/pki/ca.crt")
    ca_pem = tmp_path / "ca.pem"
    ca_pem.write_bytes(x509.load_der_x509_certificate(ca_der).public_bytes(serialization.Encoding.PEM))
    spoiled, remade = card_certificate(services, oid, 1), card_certificate(services, oid, 2)
    assert spoiled.revoked_at is not None and remade.revoked_at is None
    (tmp_path / "spoiled.pem").write_text(spoiled.pem)
    (tmp_path / "remade.pem").write_text(remade.pem)

    crl = x509.load_der_x509_crl(fetch(f"{base}/pki/crl"))
    ca = x509.load_der_x509_certificate(ca_der)
    assert crl.is_signature_valid(ca.public_key())
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number >= 1
    assert (crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
            == ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest)
    assert crl.get_revoked_certificate_by_serial_number(int(spoiled.serial, 16)) is not None
    assert crl.get_revoked_certificate_by_serial_number(int(remade.serial, 16)) is None

    # -crl_download: openssl reads the CRL distribution point in the certificate and fetches it.
    rejected = run("openssl", "verify", "-crl_check", "-crl_download", "-CAfile", str(ca_pem),
                   str(tmp_path / "spoiled.pem"))
    assert rejected.returncode != 0 and "certificate revoked" in rejected.stdout + rejected.stderr, \
        rejected.stdout + rejected.stderr
    accepted = run("openssl", "verify", "-crl_check", "-crl_download", "-CAfile", str(ca_pem),
                   str(tmp_path / "remade.pem"))
    assert accepted.returncode == 0 and ": OK" in accepted.stdout, accepted.stdout + accepted.stderr


def test_openssl_ocsp_asks_the_console_and_hears_revoked_and_good(console, tmp_path):
    services, base, oid = console
    ca_pem = tmp_path / "ca.pem"
    ca_pem.write_bytes(x509.load_der_x509_certificate(fetch(f"{base}/pki/ca.crt"))
                       .public_bytes(serialization.Encoding.PEM))
    for attempt, expected in ((1, "revoked"), (2, "good")):
        for kind in ("PIV Authentication", "Card Authentication"):
            row = card_certificate(services, oid, attempt, kind)
            pem = tmp_path / f"{attempt}-{kind[:4]}.pem"
            pem.write_text(row.pem)
            asked = run("openssl", "ocsp", "-issuer", str(ca_pem), "-CAfile", str(ca_pem), "-cert", str(pem),
                        "-url", f"{base}/pki/ocsp")
            output = asked.stdout + asked.stderr
            assert asked.returncode == 0, output
            assert "Response verify OK" in output, output
            assert f"{pem}: {expected}" in output, output
            assert "WARNING" not in output, output  # the nonce came back, the times are sane
    # The same question by GET (RFC 6960 A.1), as a caching client asks it.
    remade = x509.load_pem_x509_certificate(card_certificate(services, oid, 2).pem.encode())
    ca = x509.load_pem_x509_certificate(ca_pem.read_bytes())
    request = ocsp.OCSPRequestBuilder().add_certificate(remade, ca, hashes.SHA256()).build()
    der = request.public_bytes(serialization.Encoding.DER)
    encoded = urllib.request.quote(base64.b64encode(der).decode(), safe="")
    answer = ocsp.load_der_ocsp_response(fetch(f"{base}/pki/ocsp/{encoded}"))
    assert answer.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert answer.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert answer.serial_number == remade.serial_number


def _extension(certificate: x509.Certificate, kind):
    return certificate.extensions.get_extension_for_class(kind)


def test_every_issued_certificate_follows_its_profile(console):
    services, base, oid = console
    config = pki_config.load(public_base_url=base)
    ca_path = Path(services.settings.instance_path) / "ca" / "ca.pem"
    ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
    ca_key_id = _extension(ca, x509.SubjectKeyIdentifier).value.digest
    assert {p.policy_identifier for p in _extension(ca, x509.CertificatePolicies).value} \
        == set(config.ca_policies)
    issued = rows(services)
    card_rows = [row for row in issued if row.card_number]
    # Two cards, card 2 twice, four certificates each; and the CA's content signer.
    assert len(card_rows) == 12
    assert {row.certificate_type for row in card_rows} == set(pki_config.CARD_CERTIFICATES)
    assert [row.certificate_type for row in issued if row.attempt_ref == CONTENT_SIGNER_REF] \
        == [pki_config.CONTENT_SIGNING]
    uuids_by_attempt: dict[str, set] = {}
    for row in issued:
        certificate = x509.load_pem_x509_certificate(row.pem.encode())
        certificate.verify_directly_issued_by(ca)
        assert f"{certificate.serial_number:X}" == row.serial
        if row.attempt_ref == RESPONDER_REF:
            assert _extension(certificate, x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.OCSP_SIGNING])
            _extension(certificate, x509.OCSPNoCheck)
            continue
        profile = config.profiles[row.certificate_type]
        assert row.slot == (profile.slot or "")
        assert certificate.subject == profile.subject_name(row.card_number or "")
        basic = _extension(certificate, x509.BasicConstraints)
        assert basic.critical and not basic.value.ca
        usage = _extension(certificate, x509.KeyUsage)
        assert usage.critical and usage.value == profile.key_usage_for(certificate.public_key())
        eku = _extension(certificate, x509.ExtendedKeyUsage)
        assert list(eku.value) == list(profile.extended_key_usage)
        assert eku.critical == profile.extended_key_usage_critical
        if row.certificate_type in ("Card Authentication", pki_config.CONTENT_SIGNING):
            assert eku.critical
        policies = _extension(certificate, x509.CertificatePolicies).value
        assert [p.policy_identifier for p in policies] == list(profile.policies)
        [point] = _extension(certificate, x509.CRLDistributionPoints).value
        assert [name.value for name in point.full_name] == [f"{base}/pki/crl"]
        access = {(a.access_method, a.access_location.value)
                  for a in _extension(certificate, x509.AuthorityInformationAccess).value}
        assert access == {(AuthorityInformationAccessOID.CA_ISSUERS, f"{base}/pki/ca.crt"),
                          (AuthorityInformationAccessOID.OCSP, f"{base}/pki/ocsp")}
        assert _extension(certificate, x509.AuthorityKeyIdentifier).value.key_identifier == ca_key_id
        assert (_extension(certificate, x509.SubjectKeyIdentifier).value
                == x509.SubjectKeyIdentifier.from_public_key(certificate.public_key()))
        if row.certificate_type in pki_config.SAN_REQUIRED:
            names = _extension(certificate, x509.SubjectAlternativeName).value
            [fascn] = names.get_values_for_type(x509.OtherName)
            assert fascn.type_id == pki_config.ID_PIV_FASCN
            assert fascn.value[:2] == b"\x04\x19" and len(fascn.value) == 27  # OCTET STRING, 25 bytes
            [urn] = names.get_values_for_type(x509.UniformResourceIdentifier)
            assert urn.startswith("urn:uuid:")
            uuids_by_attempt.setdefault(row.attempt_ref, set()).add(uuid.UUID(urn[len("urn:uuid:"):]))
        else:
            with pytest.raises(x509.ExtensionNotFound):
                _extension(certificate, x509.SubjectAlternativeName)
    # PIV Authentication and Card Authentication of one card name the same card; every card its own.
    assert all(len(found) == 1 for found in uuids_by_attempt.values())
    assert len({next(iter(found)) for found in uuids_by_attempt.values()}) == len(uuids_by_attempt) == 3


def test_the_hosts_sweep_signs_a_new_crl_before_next_update(services):
    ca = services.station.encoder.ca
    assert services.sweeper.sweeps["revocation list"] == ca.refresh_crl
    services.sweeper.run_once()
    first = x509.load_der_x509_crl(ca.current_crl())
    with unit_of_work(services.sessions) as session:  # an hour before nextUpdate
        session.execute(update(PublishedCrl).values(next_update=datetime.now(UTC) + timedelta(hours=1)))
    services.sweeper.run_once()
    renewed = x509.load_der_x509_crl(ca.current_crl())
    assert (renewed.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
            > first.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)
    assert renewed.next_update_utc - datetime.now(UTC) > timedelta(hours=167)
