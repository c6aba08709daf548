"""Bench: the console's OCSP answer (floor 10 ms) and signing the CRL with 100,000 revoked
certificates (floor 5 s), with baselines measured in the same run.

OCSP: openssl-sized requests (SHA-1 CertID, nonce) for random issued certificates, answered in
process (``OcspResponder.respond`` in a read-only transaction) and over HTTP by the console
(``POST /pki/ocsp`` through a WSGI server on loopback); baseline: ``GET /healthz`` on the same
server. The floor is checked on the median; p95 shows what a loaded machine adds.
CRL: ``LocalCA.publish_crl`` (reads the revoked rows, signs, stores) and ``GET /pki/crl`` (a read);
baseline: the former way, ``CertificateRevocationListBuilder.add_revoked_certificate`` per entry.
Run from the project root:
    .venv/bin/python -m bench.pki [--revoked 100000] [--issued 200000] [--database-url URL]
A PostgreSQL URL gets a schema of its own, dropped afterwards; the default is SQLite in a
temporary folder.
"""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from sqlalchemy import insert
from werkzeug.serving import make_server

from engine import bootstrap
from engine.db import read_only
from engine.web.app import create_app
from tasks.cardsdk.ca import LocalCA, ca_folder
from tasks.cardsdk.ocsp import OcspResponder
from tasks.cardsdk.records import IssuedCertificate
from tests.conftest import make_settings, private_schema

OCSP_FLOOR_MS = 10.0
CRL_FLOOR_S = 5.0
CHUNK = 20_000


def fill(services, ca: LocalCA, issued: int, revoked: int) -> list[int]:
    """``issued`` certificate rows, the first ``revoked`` of them revoked; their serials. The rows
    hold the CA's certificate as PEM: the responder and the CRL read serial and revocation only."""
    pem = ca.certificate.public_bytes(serialization.Encoding.PEM).decode()
    now = datetime.now(UTC)
    serials = [x509.random_serial_number() for _ in range(issued)]
    for start in range(0, issued, CHUNK):
        rows = [{"serial": f"{serial:X}", "attempt_ref": f"order-1/card-{n}/attempt-1",
                 "card_number": f"TC-{n:06d}", "slot": "9A", "certificate_type": "PIV Authentication",
                 "subject": f"CN=TC-{n:06d}", "not_before": now, "not_after": now + timedelta(days=14),
                 # An attempt's four certificates share a revocation time; attempts differ.
                 "pem": pem, "revoked_at": now - timedelta(seconds=n // 4) if n < revoked else None,
                 "revocation_reason": "misprint" if n < revoked else None}
                for n, serial in enumerate(serials[start:start + CHUNK], start=start)]
        with services.sessions.begin() as session:
            session.execute(insert(IssuedCertificate), rows)
    return serials


def timed(function: Callable[[], object], repeat: int) -> list[float]:
    """Seconds of each of ``repeat`` calls."""
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        function()
        samples.append(time.perf_counter() - began)
    return samples


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def former_crl(ca: LocalCA, services, limit: int) -> float:
    """The former way (one builder call per entry, each copying the list) for ``limit`` entries."""
    from sqlalchemy import select

    with read_only(services.sessions) as session:
        rows = session.execute(select(IssuedCertificate.serial, IssuedCertificate.revoked_at)
                               .where(IssuedCertificate.revoked_at.is_not(None)).limit(limit)).all()
    began = time.perf_counter()
    now = datetime.now(UTC)
    builder = (x509.CertificateRevocationListBuilder().issuer_name(ca.certificate.subject)
               .last_update(now).next_update(now + timedelta(days=7)))
    for serial, revoked_at in rows:
        entry = (x509.RevokedCertificateBuilder().serial_number(int(serial, 16))
                 .revocation_date(revoked_at if revoked_at.tzinfo else revoked_at.replace(tzinfo=UTC))
                 .add_extension(x509.CRLReason(x509.ReasonFlags.cessation_of_operation), critical=False)
                 .build())
        builder = builder.add_revoked_certificate(entry)
    builder.sign(ca.key, hashes.SHA256())
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--revoked", type=int, default=100_000)
    parser.add_argument("--issued", type=int, default=200_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--baseline-revoked", type=int, default=100_000,
                        help="entries for the former CRL builder (about 45 s at 100,000)")
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, \
            (private_schema(args.database_url, "bench") if args.database_url else nullcontext(None)) as url:
        settings = make_settings(Path(folder) / "instance", url)
        bootstrap.init_database(settings)
        LocalCA.init(ca_folder(settings.instance_path), settings.ca_passphrase)
        services = bootstrap.build_services(settings, sweep=False)
        try:
            run(services, args)
        finally:
            services.close()


def run(services, args) -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log line per request
    app = create_app(services=services)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    settings = services.settings
    ca = LocalCA(ca_folder(settings.instance_path), settings.ca_passphrase, services.sessions)
    began = time.perf_counter()
    serials = fill(services, ca, args.issued, args.revoked)
    print(f"{services.db.dialect.name}: {args.issued:,} certificates, {args.revoked:,} revoked "
          f"(filled in {time.perf_counter() - began:.1f} s)")
    rng = random.Random(11)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)

    def request_for(serial: int) -> bytes:
        certificate = (x509.CertificateBuilder().subject_name(ca.certificate.subject)
                       .issuer_name(ca.certificate.subject).public_key(key.public_key()).serial_number(serial)
                       .not_valid_before(now).not_valid_after(now + timedelta(days=1))
                       .sign(key, hashes.SHA256()))
        return (ocsp.OCSPRequestBuilder().add_certificate(certificate, ca.certificate, hashes.SHA1())
                .add_extension(x509.OCSPNonce(rng.randbytes(16)), critical=False).build()
                .public_bytes(serialization.Encoding.DER))

    requests = [request_for(rng.choice(serials)) for _ in range(args.requests)]
    responder = OcspResponder(ca)
    responder.ca.ocsp_responder()  # issued once, outside the timing

    def in_process():
        request = rng.choice(requests)
        with read_only(services.sessions) as session:
            answer = responder.respond(request, session)
        assert ocsp.load_der_ocsp_response(answer).response_status == ocsp.OCSPResponseStatus.SUCCESSFUL

    def over_http():
        post = urllib.request.Request(f"{base}/pki/ocsp", data=rng.choice(requests),
                                      headers={"Content-Type": "application/ocsp-request"})
        with urllib.request.urlopen(post, timeout=30) as response:
            assert ocsp.load_der_ocsp_response(response.read()).response_status \
                == ocsp.OCSPResponseStatus.SUCCESSFUL

    def healthz():
        with urllib.request.urlopen(f"{base}/healthz", timeout=30) as response:
            response.read()

    for function in (in_process, over_http, healthz):
        timed(function, 10)  # warm up: connections, the CA key, the responder
    ocsp_local = timed(in_process, args.requests)
    ocsp_http = timed(over_http, args.requests)
    health = timed(healthz, args.requests)

    publish = timed(ca.publish_crl, 3)
    with urllib.request.urlopen(f"{base}/pki/crl", timeout=60) as response:
        crl = x509.load_der_x509_crl(response.read())
    assert len(crl) == args.revoked
    fetch = timed(lambda: urllib.request.urlopen(f"{base}/pki/crl", timeout=60).read(), 5)
    baseline_n = min(args.baseline_revoked, args.revoked)
    former = former_crl(ca, services, baseline_n)
    ours_at_baseline_n = statistics.median(publish) * baseline_n / args.revoked  # linear in entries
    server.shutdown()

    rows = [
        ("OCSP answer, in process p50 / p95", f"{percentile(ocsp_local, .5) * 1e3:.2f} / "
         f"{percentile(ocsp_local, .95) * 1e3:.2f} ms", f"{OCSP_FLOOR_MS:.0f} ms",
         percentile(ocsp_local, .5) * 1e3 < OCSP_FLOOR_MS),
        ("OCSP answer, POST over HTTP p50 / p95", f"{percentile(ocsp_http, .5) * 1e3:.2f} / "
         f"{percentile(ocsp_http, .95) * 1e3:.2f} ms", f"{OCSP_FLOOR_MS:.0f} ms",
         percentile(ocsp_http, .5) * 1e3 < OCSP_FLOOR_MS),
        ("  baseline GET /healthz p50", f"{percentile(health, .5) * 1e3:.2f} ms (OCSP x"
         f"{percentile(ocsp_http, .5) / percentile(health, .5):.1f})", "", True),
        (f"CRL signed, {args.revoked:,} revoked (median of 3)", f"{statistics.median(publish):.2f} s "
         f"({len(crl.public_bytes(serialization.Encoding.DER)) / 1e6:.1f} MB)", f"{CRL_FLOOR_S:.0f} s",
         statistics.median(publish) < CRL_FLOOR_S),
        ("GET /pki/crl (a read of the stored one)", f"{statistics.median(fetch) * 1e3:.0f} ms", "", True),
        (f"  baseline former builder, {baseline_n:,} revoked", f"{former:.2f} s (ours there "
         f"~{ours_at_baseline_n:.2f} s, x{former / ours_at_baseline_n:.0f} faster)", "", True),
    ]
    print(f"{'measure':44s} {'result':44s} {'floor':8s}")
    for name, result, floor, ok in rows:
        print(f"{name:44s} {result:44s} {floor:8s} {'' if not floor else 'ok' if ok else 'MISSED'}")


if __name__ == "__main__":
    main()
