"""What relying parties fetch, with no login: the CA certificate, the CRL and the OCSP responder.

Every certificate the local CA issues names these URLs (under CARDFLOW_PUBLIC_BASE_URL) in its
CRL distribution point and authority information access, so door controllers, Windows logon and
path validators find revocation here. Serving the CRL is a read of the stored one (signed on every
revocation and by the sweep before nextUpdate). The OCSP responder answers every request with an
OCSP response: bad input gets an OCSP error status, never an HTML error page.
"""

from __future__ import annotations

import base64
import binascii
import logging
import threading
import time
from datetime import UTC, datetime
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp
from flask import Blueprint, Response, abort, current_app, request
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge

from engine.db import read_only
from engine.web.context import services
from tasks.cardsdk.ca import LocalCA, ca_folder
from tasks.cardsdk.job import CardSdkError
from tasks.cardsdk.ocsp import CONTENT_TYPE, MAX_REQUEST_BYTES, OcspResponder, error_response
from tasks.cardsdk.pki_config import load as load_certificate_profiles

log = logging.getLogger(__name__)

bp = Blueprint("pki", __name__, url_prefix="/pki")
PKI_KEY = "cardflow_pki"
PKI_FAILED_KEY = "cardflow_pki_failed"
# A CA that could not be loaded (not set up, wrong passphrase) is tried again after this long, so
# anonymous requests neither decrypt the key nor log a warning each time.
RETRY_SECONDS = 30.0
_lock = threading.Lock()


def _responder() -> OcspResponder | None:
    """The CA and its responder, loaded once per app (the CA key is decrypted once); None when the
    local CA is not set up (or its passphrase is wrong: the log says which)."""
    cached = current_app.extensions.get(PKI_KEY)
    if cached is not None:
        return cached
    with _lock:
        cached = current_app.extensions.get(PKI_KEY)
        failed_at = current_app.extensions.get(PKI_FAILED_KEY)
        if cached is None and (failed_at is None or time.monotonic() - failed_at > RETRY_SECONDS):
            settings = services().settings
            try:
                config = load_certificate_profiles(settings.certificate_profiles, settings.public_base_url)
                ca = LocalCA(ca_folder(settings.instance_path), settings.ca_passphrase, services().sessions,
                             config)
            except (CardSdkError, ValueError) as error:
                log.warning("the PKI pages cannot serve: %s", error)
                current_app.extensions[PKI_FAILED_KEY] = time.monotonic()
                return None
            cached = current_app.extensions[PKI_KEY] = OcspResponder(ca)
    return cached


def _no_ca():
    abort(404, description="This installation has no local CA to publish (run `cardflow ca init`).")


@bp.get("/ca.crt")
def ca_certificate():
    """The CA certificate, DER (the caIssuers URL of every certificate)."""
    responder = _responder()
    if responder is None:
        _no_ca()
    der = responder.ca.certificate.public_bytes(serialization.Encoding.DER)
    response = Response(der, mimetype="application/pkix-cert")
    response.headers["Content-Disposition"] = "attachment; filename=ca.crt"
    return response


@bp.get("/crl")
def crl():
    """The current CRL, DER, as stored; signed afresh only when none is stored or it expired."""
    responder = _responder()
    if responder is None:
        _no_ca()
    with read_only(services().sessions) as session:
        head = responder.ca.stored_crl_number(session)
        fresh = head is not None and head[1] > datetime.now(UTC)
        if fresh and request.if_none_match.contains(str(head[0])):
            # A client polling for a new CRL gets "not modified" without 5 MB of unchanged bytes.
            return _crl_response(Response(status=304), head[0])
        stored = responder.ca.stored_crl(session) if fresh else None
    der = stored[0] if stored is not None else responder.ca.current_crl()
    number = x509.load_der_x509_crl(der).extensions.get_extension_for_class(x509.CRLNumber).value.crl_number \
        if stored is None else head[0]
    response = Response(der, mimetype="application/pkix-crl")
    response.headers["Content-Disposition"] = "attachment; filename=crl.crl"
    return _crl_response(response, number)


def _crl_response(response: Response, number: int) -> Response:
    """The CRL number is its ETag; caches keep it but ask again each time (a revocation is news)."""
    response.set_etag(str(number))
    response.headers["Cache-Control"] = "public, no-cache"
    return response


@bp.post("/ocsp")
def ocsp_post():
    """An OCSP request in the body (RFC 6960 A.1), the way openssl ocsp asks."""
    if request.content_length is not None and request.content_length > MAX_REQUEST_BYTES:
        return _answer(error_response(ocsp.OCSPResponseStatus.MALFORMED_REQUEST))
    request.max_content_length = MAX_REQUEST_BYTES
    try:
        body = request.get_data(cache=False)
    except (RequestEntityTooLarge, ClientDisconnected):
        return _answer(error_response(ocsp.OCSPResponseStatus.MALFORMED_REQUEST))
    return _respond(body)


@bp.get("/ocsp/<path:encoded>")
def ocsp_get(encoded: str):
    """An OCSP request base64- and URL-encoded in the path (RFC 6960 A.1), cacheable by proxies."""
    if len(encoded) > 2 * MAX_REQUEST_BYTES:
        return _answer(error_response(ocsp.OCSPResponseStatus.MALFORMED_REQUEST))
    try:
        body = base64.b64decode(unquote(encoded), validate=True)
    except (binascii.Error, ValueError):
        return _answer(error_response(ocsp.OCSPResponseStatus.MALFORMED_REQUEST))
    return _respond(body)


def _respond(body: bytes) -> Response:
    responder = _responder()
    if responder is None:
        return _answer(error_response(ocsp.OCSPResponseStatus.TRY_LATER))
    try:
        with read_only(services().sessions) as session:
            der = responder.respond(body, session)
    except Exception:  # a database that is down: the client hears "internalError", the log has why
        log.exception("the OCSP responder failed")
        der = error_response(ocsp.OCSPResponseStatus.INTERNAL_ERROR)
    return _answer(der)


def _answer(der: bytes) -> Response:
    response = Response(der, mimetype=CONTENT_TYPE)
    response.headers["Cache-Control"] = "no-store"
    return response
