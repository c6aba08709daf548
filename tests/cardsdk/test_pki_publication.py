"""The local CA's CRL and OCSP responder on SQLite and PostgreSQL: numbers that only grow, an AKI,
a new CRL on every revocation and before nextUpdate, answers good/revoked/unknown, and an OCSP error
status (never an exception) for whatever else arrives."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy import create_engine, update
from sqlalchemy.orm import sessionmaker

from tasks.cardsdk.ca import CONTENT_SIGNER_REF, RESPONDER_FILE, LocalCA
from tasks.cardsdk.ocsp import MAX_REQUEST_BYTES, OcspResponder
from tasks.cardsdk.pki_config import ID_PIV_CONTENT_SIGNING
from tasks.cardsdk.pki_records import PublishedCrl
from tasks.cardsdk.records import IssuedCertificate
from tasks.store import Base

PASSPHRASE = "pki passphrase"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def sessions(request, tmp_path):
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" \
        else f"sqlite:///{tmp_path / 'pki.db'}"
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    yield sessionmaker(engine, expire_on_commit=False)
    engine.dispose()


@pytest.fixture
def ca(tmp_path, sessions):
    LocalCA.init(tmp_path / "ca", PASSPHRASE)
    return LocalCA(tmp_path / "ca", PASSPHRASE, sessions)


def issue(ca, attempt: str, kind: str = "PIV Authentication") -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return ca.issue(key, "TC-000001", kind, 14, attempt, card_number="TC-000001",
                    card_uuid=uuid.uuid4(), fascn=bytes(range(25)))


def current(ca) -> x509.CertificateRevocationList:
    return x509.load_der_x509_crl(ca.current_crl())


def number(crl) -> int:
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def test_every_revocation_publishes_a_crl_with_a_higher_number_and_the_ca_key_id(ca):
    first, second = issue(ca, "a-1"), issue(ca, "a-2")
    empty = current(ca)
    assert len(empty) == 0 and empty.is_signature_valid(ca.certificate.public_key())
    assert ca.revoke_attempt("a-1", "keyCompromise") == [f"{first.serial_number:X}"]
    after_one = current(ca)
    assert number(after_one) == number(empty) + 1
    assert after_one.is_signature_valid(ca.certificate.public_key())
    assert (after_one.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
            == ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest)
    entry = after_one.get_revoked_certificate_by_serial_number(first.serial_number)
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason \
        == x509.ReasonFlags.key_compromise
    assert after_one.get_revoked_certificate_by_serial_number(second.serial_number) is None
    assert after_one.next_update_utc - after_one.last_update_utc == timedelta(hours=168)
    # Revoking nothing new publishes nothing; a free-text reason is a cessation of operation.
    assert ca.revoke_attempt("a-1", "again") == []
    assert number(current(ca)) == number(after_one)
    ca.revoke_attempt("a-2", "colour stripe across the photo")
    entry = current(ca).get_revoked_certificate_by_serial_number(second.serial_number)
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason \
        == x509.ReasonFlags.cessation_of_operation
    # The PEM the CLI prints is the same CRL as the DER the console serves.
    assert x509.load_pem_x509_crl(ca.crl()) == current(ca)


def test_the_sweep_signs_a_new_crl_before_next_update_and_after_a_lost_publication(ca, sessions):
    assert ca.refresh_crl() is True  # none stored yet
    assert ca.refresh_crl() is False  # fresh: nothing to do
    first = number(current(ca))
    with sessions.begin() as session:  # a day before nextUpdate: within refresh_before_hours (24)
        session.execute(update(PublishedCrl).values(next_update=datetime.now(UTC) + timedelta(hours=23)))
    assert ca.refresh_crl() is True
    assert number(current(ca)) == first + 1
    # A revocation committed while its CRL failed to sign (a crash between the two) is caught up.
    issued = issue(ca, "lost")
    with sessions.begin() as session:
        session.execute(update(IssuedCertificate).where(IssuedCertificate.attempt_ref == "lost")
                        .values(revoked_at=datetime.now(UTC) + timedelta(seconds=2), revocation_reason="x"))
    assert ca.refresh_crl() is True
    assert current(ca).get_revoked_certificate_by_serial_number(issued.serial_number) is not None
    # An expired stored CRL is never served: reading it signs a new one.
    with sessions.begin() as session:
        session.execute(update(PublishedCrl).values(next_update=datetime.now(UTC) - timedelta(minutes=1)))
    assert current(ca).next_update_utc > datetime.now(UTC)


def run_at_once(calls) -> None:
    """Run every call on a thread of its own, all released together; fail with any error raised."""
    start = threading.Barrier(len(calls))
    errors: list[BaseException] = []

    def run(call):
        try:
            start.wait()
            call()
        except BaseException as error:  # noqa: BLE001  (reported below)
            errors.append(error)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors


def test_hosts_publishing_at_once_give_distinct_numbers(tmp_path, ca, sessions):
    issue(ca, "r-1")
    ca.revoke_attempt("r-1", "misprint")
    other = LocalCA(tmp_path / "ca", PASSPHRASE, sessions)
    numbers: list[int] = []
    run_at_once([lambda authority=authority: numbers.extend(authority.publish_crl() for _ in range(5))
                 for authority in (ca, other)])
    assert len(set(numbers)) == 10
    assert number(current(ca)) == max(numbers)


def test_the_content_signer_and_the_responder_are_issued_once_and_recorded(tmp_path, ca, sessions):
    key, certificate = ca.content_signer()
    assert ca.content_signer()[1] == certificate
    assert LocalCA(tmp_path / "ca", PASSPHRASE, sessions).content_signer()[1] == certificate
    eku = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical and list(eku.value) == [ID_PIV_CONTENT_SIGNING]
    assert key.public_key() == certificate.public_key()
    assert b"ENCRYPTED" in (tmp_path / "ca" / "content-signer.pem").read_bytes()
    responder_key, responder = ca.ocsp_responder()
    assert list(responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) \
        == [ExtendedKeyUsageOID.OCSP_SIGNING]
    responder.extensions.get_extension_for_class(x509.OCSPNoCheck)
    assert (responder.not_valid_after_utc - responder.not_valid_before_utc).days <= 31
    with sessions() as session:
        recorded = {row.attempt_ref: row for row in session.query(IssuedCertificate)}
    assert recorded[CONTENT_SIGNER_REF].serial == f"{certificate.serial_number:X}"
    assert recorded["ca:ocsp-responder"].certificate_type == "OCSP Responder"
    # Near its end the responder certificate is renewed (in the folder, for every process).
    stale = tmp_path / "ca" / RESPONDER_FILE
    fresh = LocalCA(tmp_path / "ca", PASSPHRASE, sessions)
    fresh._renewal_due = lambda certificate, now: certificate == responder
    renewed = fresh.ocsp_responder()[1]
    assert renewed != responder and renewed.serial_number != responder.serial_number
    assert x509.load_pem_x509_certificate(stale.read_bytes()) == renewed


def ask(ca, certificate, algorithm=None, nonce: bytes | None = b"0123456789abcdef"):
    builder = ocsp.OCSPRequestBuilder().add_certificate(certificate, ca.certificate,
                                                        algorithm or hashes.SHA1())
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def answer(ca, sessions, request: bytes) -> ocsp.OCSPResponse:
    with sessions() as session:
        return ocsp.load_der_ocsp_response(OcspResponder(ca).respond(request, session))


def test_ocsp_answers_good_revoked_and_unknown_signed_by_the_delegated_responder(ca, sessions):
    good, revoked = issue(ca, "g-1"), issue(ca, "r-1", "Card Authentication")
    ca.revoke_attempt("r-1", "misprint")
    _key, responder = ca.ocsp_responder()
    stranger = good  # a serial the CA never issued: same issuer, unknown number
    unknown_request = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
        *_issuer_hashes(ca, hashes.SHA256()), stranger.serial_number + 1, hashes.SHA256()).build()
    cases = [(good, ocsp.OCSPCertStatus.GOOD, ask(ca, good)),
             (revoked, ocsp.OCSPCertStatus.REVOKED, ask(ca, revoked, hashes.SHA256())),
             (None, ocsp.OCSPCertStatus.UNKNOWN, unknown_request.public_bytes(serialization.Encoding.DER))]
    for certificate, status, request in cases:
        response = answer(ca, sessions, request)
        assert response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
        assert response.certificate_status == status
        assert response.certificates == [responder]
        assert response.responder_key_hash == responder.extensions.get_extension_for_class(
            x509.SubjectKeyIdentifier).value.digest
        responder.public_key().verify(response.signature, response.tbs_response_bytes,
                                      ec.ECDSA(response.signature_hash_algorithm))
        if certificate is not None:
            assert response.serial_number == certificate.serial_number
    response = answer(ca, sessions, ask(ca, revoked))
    assert response.revocation_reason == x509.ReasonFlags.cessation_of_operation
    assert response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == b"0123456789abcdef"
    assert response.next_update_utc - response.this_update_utc == timedelta(hours=24)


def _issuer_hashes(ca, algorithm) -> tuple[bytes, bytes]:
    request = ocsp.OCSPRequestBuilder().add_certificate(ca.certificate, ca.certificate, algorithm).build()
    return request.issuer_name_hash, request.issuer_key_hash


def test_ocsp_refuses_whatever_is_not_a_question_about_this_ca_with_an_error_status(ca, sessions, tmp_path):
    certificate = issue(ca, "h-1")
    other_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "another CA")])
    other = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(other_key.public_key())
             .serial_number(certificate.serial_number).not_valid_before(datetime.now(UTC))
             .not_valid_after(datetime.now(UTC) + timedelta(days=1)).sign(other_key, hashes.SHA256()))
    foreign = ocsp.OCSPRequestBuilder().add_certificate(other, other, hashes.SHA1()).build()
    valid = ask(ca, certificate)
    statuses = {
        "garbage": (b"\x30\x03\x02\x01", ocsp.OCSPResponseStatus.MALFORMED_REQUEST),
        "empty": (b"", ocsp.OCSPResponseStatus.MALFORMED_REQUEST),
        "html": (b"<html>" * 10, ocsp.OCSPResponseStatus.MALFORMED_REQUEST),
        "huge": (valid + b"\x00" * MAX_REQUEST_BYTES, ocsp.OCSPResponseStatus.MALFORMED_REQUEST),
        "trailing bytes": (valid + b"\x00", ocsp.OCSPResponseStatus.MALFORMED_REQUEST),
        "another issuer": (foreign.public_bytes(serialization.Encoding.DER),
                           ocsp.OCSPResponseStatus.UNAUTHORIZED),
        "huge nonce": (ask(ca, certificate, nonce=b"n" * 2000), ocsp.OCSPResponseStatus.MALFORMED_REQUEST),
        "a certificate, not a request": (certificate.public_bytes(serialization.Encoding.DER),
                                         ocsp.OCSPResponseStatus.MALFORMED_REQUEST),
    }
    for label, (request, status) in statuses.items():
        response = answer(ca, sessions, request)
        assert response.response_status == status, label
    # Nothing was written by any of them (no certificate, no CRL).
    with sessions() as session:
        assert session.query(IssuedCertificate).count() == 1  # the card's: no answer needed the responder


def test_hosts_that_find_no_crl_at_once_publish_one(tmp_path, ca, sessions):
    """A sweep and a page that both find the CRL missing (or stale) publish one new CRL between
    them, not one each: a client told "not modified" a moment ago must not see a new number."""
    authorities = [ca, *(LocalCA(tmp_path / "ca", PASSPHRASE, sessions) for _ in range(3))]
    run_at_once([authority.current_crl if n % 2 == 0 else authority.refresh_crl
                 for n, authority in enumerate(authorities)])
    assert number(current(ca)) == 1
