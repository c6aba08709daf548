"""/pki/ on the console: no login, DER for machines, and an OCSP response (never a 500 or an HTML page)
for whatever a client POSTs or GETs."""

from __future__ import annotations

import base64
import io
import shutil

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from sqlalchemy import text

from engine.web.app import create_app
from tasks.cardsdk.ca import ca_folder


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def ca(app, services):
    from engine.web.pki import PKI_KEY, _responder

    with app.app_context():
        _responder()
        return app.extensions[PKI_KEY].ca


def status_of(response) -> ocsp.OCSPResponseStatus:
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.mimetype == "application/ocsp-response"
    return ocsp.load_der_ocsp_response(response.data).response_status


def test_ca_certificate_and_crl_are_served_without_login_as_der(client, ca):
    certificate = client.get("/pki/ca.crt")
    assert certificate.status_code == 200 and certificate.mimetype == "application/pkix-cert"
    assert x509.load_der_x509_certificate(certificate.data) == ca.certificate
    first = client.get("/pki/crl")
    assert first.status_code == 200 and first.mimetype == "application/pkix-crl"
    crl = x509.load_der_x509_crl(first.data)
    assert crl.is_signature_valid(ca.certificate.public_key())
    # Serving is a read of the stored CRL: asking again signs nothing new.
    assert client.get("/pki/crl").data == first.data
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    issued = ca.issue(key, "TC-000001", "PIV Authentication", 14, "web-1")
    ca.revoke_attempt("web-1", "misprint")
    again = x509.load_der_x509_crl(client.get("/pki/crl").data)
    assert again.get_revoked_certificate_by_serial_number(issued.serial_number) is not None
    assert (again.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
            > crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)


def test_ocsp_needs_no_session_and_no_csrf_token(client, ca):
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    issued = ca.issue(key, "TC-000001", "Card Authentication", 14, "web-2")
    request = ocsp.OCSPRequestBuilder().add_certificate(issued, ca.certificate, hashes.SHA1()).build()
    der = request.public_bytes(serialization.Encoding.DER)
    response = client.post("/pki/ocsp", data=der, content_type="application/ocsp-request")
    assert status_of(response) == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert ocsp.load_der_ocsp_response(response.data).certificate_status == ocsp.OCSPCertStatus.GOOD
    encoded = base64.b64encode(der).decode()
    assert status_of(client.get(f"/pki/ocsp/{encoded}")) == ocsp.OCSPResponseStatus.SUCCESSFUL


@pytest.mark.parametrize(("label", "body"), [
    ("garbage", b"\xff\x00garbage"),
    ("empty", b""),
    ("a form post", b"csrf_token=x&name=admin"),
    ("a body over the console's own limit", b"\x30" * (3 * 1024 * 1024)),
    ("a body over the responder's limit", b"\x30\x82" + b"\x00" * 20_000),
])
def test_hostile_posts_get_an_ocsp_error_status(client, ca, label, body):
    response = client.post("/pki/ocsp", data=body, content_type="application/ocsp-request")
    assert status_of(response) == ocsp.OCSPResponseStatus.MALFORMED_REQUEST, label


def test_a_body_without_length_cannot_outgrow_the_limit(client, ca):
    stream = io.BytesIO(b"\x30" * (5 * 1024 * 1024))
    response = client.post("/pki/ocsp", input_stream=stream, content_type="application/ocsp-request",
                           headers={"Transfer-Encoding": "chunked"})
    assert status_of(response) == ocsp.OCSPResponseStatus.MALFORMED_REQUEST


@pytest.mark.parametrize("path", ["not-base64!!", "%ZZ", "..%2F..%2Fetc%2Fpasswd", "A" * 40_000,
                                  "MAMCAQA=", "<script>alert(1)</script>"])
def test_hostile_gets_get_an_ocsp_error_status(client, ca, path):
    assert status_of(client.get(f"/pki/ocsp/{path}")) == ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_without_a_ca_the_pages_say_so_and_ocsp_says_try_later(services):
    shutil.rmtree(ca_folder(services.settings.instance_path))
    client = create_app(services=services).test_client()
    missing = client.get("/pki/ca.crt")
    assert missing.status_code == 404 and "cardflow ca init" in missing.get_data(as_text=True)
    assert client.get("/pki/crl").status_code == 404
    assert status_of(client.post("/pki/ocsp", data=b"\x30\x00")) == ocsp.OCSPResponseStatus.TRY_LATER


def test_a_database_that_fails_is_an_internal_error_status_not_a_500(client, ca, services):
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    issued = ca.issue(key, "TC-000001", "PIV Authentication", 14, "web-3")
    request = ocsp.OCSPRequestBuilder().add_certificate(issued, ca.certificate, hashes.SHA1()).build()
    with services.db.begin() as connection:
        connection.execute(text("ALTER TABLE issued_certificates RENAME TO issued_certificates_away"))
    try:
        response = client.post("/pki/ocsp", data=request.public_bytes(serialization.Encoding.DER))
        assert status_of(response) == ocsp.OCSPResponseStatus.INTERNAL_ERROR
    finally:
        with services.db.begin() as connection:
            connection.execute(text("ALTER TABLE issued_certificates_away RENAME TO issued_certificates"))


def test_a_client_polling_the_crl_gets_not_modified_until_a_revocation(client, ca):
    first = client.get("/pki/crl")
    number = x509.load_der_x509_crl(first.data).extensions.get_extension_for_class(x509.CRLNumber).value
    assert first.headers["ETag"] == f'"{number.crl_number}"'
    assert first.headers["Cache-Control"] == "public, no-cache"
    unchanged = client.get("/pki/crl", headers={"If-None-Match": first.headers["ETag"]})
    assert unchanged.status_code == 304 and unchanged.data == b""
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    ca.issue(key, "TC-000001", "PIV Authentication", 14, "web-4")
    ca.revoke_attempt("web-4", "misprint")
    changed = client.get("/pki/crl", headers={"If-None-Match": first.headers["ETag"]})
    assert changed.status_code == 200 and changed.headers["ETag"] != first.headers["ETag"]
    assert len(x509.load_der_x509_crl(changed.data)) == 1
