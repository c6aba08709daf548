"""The OCSP responder of the local CA (RFC 6960): good, revoked or unknown, from the issuance records.

Answers are signed by the CA's delegated responder certificate (id-kp-OCSPSigning, with
id-pkix-ocsp-nocheck) and carry it, so a client that trusts the CA verifies them; the CertID is
echoed exactly as asked (SHA-1 or SHA-2), and so is a nonce. Whatever arrives (garbage, a request
for another issuer, several certificates at once, a body too large) gets an OCSP error status, never
an exception: the caller sends back the bytes ``respond`` returns.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from sqlalchemy import select
from sqlalchemy.orm import Session

from tasks.cardsdk.crl import DEFAULT_REASON
from tasks.cardsdk.records import IssuedCertificate

log = logging.getLogger(__name__)

# A single-certificate request is about 100 bytes (with a signature and its chain a few KB).
MAX_REQUEST_BYTES = 16 * 1024
MAX_NONCE_BYTES = 128
CONTENT_TYPE = "application/ocsp-response"
_HASHES = {hashes.SHA1: hashes.SHA1(), hashes.SHA256: hashes.SHA256(), hashes.SHA384: hashes.SHA384(),
           hashes.SHA512: hashes.SHA512()}
_REASONS = {flag.value: flag for flag in x509.ReasonFlags if flag is not x509.ReasonFlags.unspecified}


def error_response(status: ocsp.OCSPResponseStatus) -> bytes:
    """An unsigned OCSP error (malformedRequest, internalError, tryLater, unauthorized)."""
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(serialization.Encoding.DER)


class OcspResponder:
    """Answers OCSP requests about the certificates of ``ca`` (a LocalCA)."""

    def __init__(self, ca) -> None:
        self.ca = ca
        self._issuer_hashes: dict[type, tuple[bytes, bytes]] = {}
        name = ca.certificate.subject.public_bytes()
        key = ca.certificate.public_key().public_bytes(serialization.Encoding.DER,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo)
        # issuerKeyHash is over the subjectPublicKey BIT STRING's value, not the whole SPKI.
        key_bits = _spki_bits(key)
        for kind, algorithm in _HASHES.items():
            self._issuer_hashes[kind] = (_digest(algorithm, name), _digest(algorithm, key_bits))

    def respond(self, request_der: bytes, session: Session, now: datetime | None = None) -> bytes:
        """The DER OCSP response to ``request_der``; the status is read through ``session``."""
        if not request_der or len(request_der) > MAX_REQUEST_BYTES:
            return error_response(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        try:
            request = ocsp.load_der_ocsp_request(request_der)
            algorithm = request.hash_algorithm
            name_hash, key_hash = request.issuer_name_hash, request.issuer_key_hash
            serial = request.serial_number
            nonce = request.extensions.get_extension_for_class(x509.OCSPNonce).value \
                if any(ext.oid == x509.OCSPNonce.oid for ext in request.extensions) else None
        except (ValueError, TypeError, UnsupportedAlgorithm, x509.DuplicateExtension):
            return error_response(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        if nonce is not None and not 0 < len(nonce.nonce) <= MAX_NONCE_BYTES:
            return error_response(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        expected = self._issuer_hashes.get(type(algorithm))
        if expected is None:
            return error_response(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        if (name_hash, key_hash) != expected:
            # Not this CA's certificate: this responder is not authoritative for it (RFC 6960 2.3).
            return error_response(ocsp.OCSPResponseStatus.UNAUTHORIZED)
        try:
            row = session.execute(select(IssuedCertificate.revoked_at, IssuedCertificate.revocation_reason)
                                  .where(IssuedCertificate.serial == f"{serial:X}")).first()
            key, certificate = self.ca.ocsp_responder()
        except Exception:
            log.exception("the OCSP responder could not answer")
            return error_response(ocsp.OCSPResponseStatus.INTERNAL_ERROR)
        now = (now or datetime.now(UTC)).replace(microsecond=0)
        revoked_at, reason = None, None
        if row is None:
            status = ocsp.OCSPCertStatus.UNKNOWN
        elif row.revoked_at is None:
            status = ocsp.OCSPCertStatus.GOOD
        else:
            status = ocsp.OCSPCertStatus.REVOKED
            revoked_at = row.revoked_at if row.revoked_at.tzinfo else row.revoked_at.replace(tzinfo=UTC)
            reason = _REASONS.get(row.revocation_reason or "", x509.ReasonFlags(DEFAULT_REASON))
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response_by_hash(name_hash, key_hash, serial, algorithm, status, now,
                                  now + timedelta(hours=self.ca.config.answer_validity_hours),
                                  revoked_at, reason)
            .responder_id(ocsp.OCSPResponderEncoding.HASH, certificate)
            .certificates([certificate])
        )
        if nonce is not None:
            builder = builder.add_extension(nonce, critical=False)
        return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _digest(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    digest = hashes.Hash(algorithm)
    digest.update(data)
    return digest.finalize()


def _spki_bits(spki: bytes) -> bytes:
    """The subjectPublicKey bits of a DER SubjectPublicKeyInfo (skipping the algorithm and the
    BIT STRING's unused-bits byte)."""

    def header(data: bytes, offset: int) -> tuple[int, int]:
        first = data[offset + 1]
        if first < 0x80:
            return offset + 2, first
        count = first & 0x7F
        return offset + 2 + count, int.from_bytes(data[offset + 2:offset + 2 + count], "big")

    start, _ = header(spki, 0)
    algorithm_start, algorithm_size = header(spki, start)
    bits_start, bits_size = header(spki, algorithm_start + algorithm_size)
    return spki[bits_start + 1:bits_start + bits_size]
