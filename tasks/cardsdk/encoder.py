"""The encoder: personalises one blank PIV card for one CardJob.

Sequence: select, authenticate with the factory management key (as the card profile says:
mutual or external), per certificate type a key generated on the card, the certificates issued
(with the card's GUID and FASC-N) and recorded with the card's new secrets in custody, in one
transaction, then PIN and PUK changed and the certificates written;
the signed CHUID, the CCC and the Security Object over all of them written, and last the
management key replaced by the card's own where the stock allows it. Card Authentication (9E) is
issued on every encoded card (FIPS 201-3); the job's certificates add the others. A failure after
a certificate was issued revokes the attempt's certificates before the error is raised.
"""

from __future__ import annotations

import logging
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

from cryptography.hazmat.primitives import serialization

from tasks.cardsdk import card_objects
from tasks.cardsdk.ca import CertificateAuthority
from tasks.cardsdk.custody import Custody
from tasks.cardsdk.job import CardJob, CardSdkError, EncodeResult
from tasks.cardsdk.piv import profiles
from tasks.cardsdk.piv.apdu import tlv
from tasks.cardsdk.piv.client import PivClient
from tasks.cardsdk.piv.errors import CaRefusedError, EncodingFailedError
from tasks.cardsdk.piv.profiles import SLOTS, CardProfile
from tasks.cardsdk.piv.transport import PcscCardSource, Transport, VirtualCardSource

log = logging.getLogger(__name__)

CARD_AUTHENTICATION = "Card Authentication"
# A content signer is reused while it stays valid this much longer (loading it decrypts its key).
SIGNER_MARGIN = timedelta(days=1)


class CardSource(Protocol):
    """Hands out a transport to the next blank card."""

    def next_card(self) -> Transport:
        """Connect to the next card to encode."""
        ...


def random_digits(length: int) -> str:
    """A uniformly random string of decimal digits (for PINs and PUKs)."""
    return "".join(secrets.choice("0123456789") for _ in range(length))


def certificate_types(job: CardJob) -> tuple[str, ...]:
    """What an encoded card gets: the job's certificates, and Card Authentication always."""
    return tuple(name for name in job.certificates if name != CARD_AUTHENTICATION) + (CARD_AUTHENTICATION,)


class Encoder:
    """Personalises cards from ``card_source`` with certificates from ``ca``, secrets to ``custody``."""

    def __init__(
        self, card_source: CardSource, ca: CertificateAuthority, custody: Custody, profile: CardProfile
    ) -> None:
        """Wire the encoder; ``timings`` holds the seconds spent per part in the last ``encode``."""
        self.card_source = card_source
        self.ca = ca
        self.custody = custody
        self.profile = profile
        self.timings = {"apdu": 0.0, "ca": 0.0, "objects": 0.0}
        self._signer = None

    def encode(self, job: CardJob) -> EncodeResult:
        """Personalise the next card for ``job``; raises only CardSdkError subclasses."""
        self._check_job(job)
        self.timings = dict.fromkeys(self.timings, 0.0)
        issued: list[str] = []
        transport = self.card_source.next_card()
        try:
            return self._personalise(job, transport, issued)
        except CardSdkError as error:
            self._revoke_after_failure(job, issued)
            log.warning("encoding of card %s (%s) failed: %s", job.card_number, job.attempt_ref, error)
            raise
        except Exception as error:
            self._revoke_after_failure(job, issued)
            log.exception("encoding of card %s (%s) failed unexpectedly", job.card_number, job.attempt_ref)
            raise EncodingFailedError(
                f"Encoding stopped on an unexpected error ({type(error).__name__}). Set the card aside "
                "and tell the administrator."
            ) from error
        finally:
            transport.close()

    def _check_job(self, job: CardJob) -> None:
        """Refuse jobs the card stock cannot take, before touching a card."""
        if job.fascn is None:
            raise EncodingFailedError(job.identity_problem
                                      or "This card has no FASC-N, so it cannot be encoded.")
        low, high = self.profile.pin_length
        if not low <= job.pin_length <= high:
            raise EncodingFailedError(
                f"A PIN of {job.pin_length} digits does not fit this card ({low}-{high})."
            )
        low, high = self.profile.puk_length
        if not low <= job.puk_length <= high:
            raise EncodingFailedError(
                f"A PUK of {job.puk_length} digits does not fit this card ({low}-{high})."
            )
        for certificate_type in certificate_types(job):
            if certificate_type not in self.profile.slot_algorithms:
                raise EncodingFailedError(
                    f"Card profile {self.profile.name!r} cannot hold a {certificate_type!r} certificate."
                )

    def _timed(self, part: str, function, *args, **kwargs):
        """Run ``function`` and add its duration to ``timings[part]``."""
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            self.timings[part] += time.perf_counter() - started

    def _personalise(self, job: CardJob, transport: Transport, issued: list[str]) -> EncodeResult:
        """The personalisation sequence proper."""
        profile = self.profile
        mutual = profile.authentication == "mutual"
        client = PivClient(lambda apdu: self._timed("apdu", transport.transmit, apdu))
        client.select()
        client.authenticate(profile.management_key, profile.management_algorithm, mutual)
        pin, puk = random_digits(job.pin_length), random_digits(job.puk_length)
        changes_key = profile.management_key_change != "none"
        # A stock whose key cannot be changed keeps the maker's key: custody holds that one.
        new_key = secrets.token_bytes(len(profile.management_key)) if changes_key else profile.management_key
        types = certificate_types(job)
        keys = [client.generate_key(SLOTS[kind]["slot"], profile.algorithm_for(kind)) for kind in types]
        # The card's secrets reach custody in the transaction that records its certificates, and
        # both before the card gets either: a card whose new PIN was lost would be spoiled, and a
        # certificate the CA did not record could not be revoked. One commit a card, not two.
        sealed = {"pin": pin, "puk": puk, "management_key": new_key.hex()}
        certificates = self._timed("ca", self._issue, list(zip(keys, types, strict=True)), job,
                                   self._record_with(job, sealed))
        issued.extend(f"{certificate.serial_number:X}" for certificate in certificates)
        client.change_pin(profile.factory_pin, pin)
        client.change_puk(profile.factory_puk, puk)
        written = [(SLOTS[certificate_type]["object"],
                    tlv(0x70, certificate.public_bytes(serialization.Encoding.DER)) + tlv(0x71, b"\x00")
                    + tlv(0xFE, b""))
                   for certificate_type, certificate in zip(types, certificates, strict=True)]
        for object_tag, content in self._timed("objects", self._card_objects, job, written):
            client.put_object(object_tag, content)
        if changes_key:
            client.set_management_key(new_key, profile.management_algorithm)
        # Prove the card took the key custody holds, while the card is still in the reader.
        client.authenticate(new_key, profile.management_algorithm, mutual)
        client.verify_pin(pin)
        chip_serial = client.serial() or job.card_uuid.hex
        log.info("encoded card %s (%s): %d certificates", job.card_number, job.attempt_ref, len(issued))
        return EncodeResult(chip_serial=chip_serial, certificate_serials=issued)

    def _card_objects(self, job: CardJob, certificates: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
        """Every data object to write, in order: the certificates, the signed CHUID, the CCC, and
        last the Security Object over all of them."""
        key, signer = self._timed("ca", self._content_signer)
        written = [*certificates,
                   (profiles.OBJECT_CHUID, card_objects.chuid(job.fascn, job.card_uuid, job.valid_until, key,
                                                              signer)),
                   (profiles.OBJECT_CCC, card_objects.ccc(job.card_uuid))]
        return [*written, (card_objects.OBJECT_SECURITY, card_objects.security_object(written, key, signer))]

    def _content_signer(self):
        """The CA's content-signing key and certificate, reused while valid for a while yet."""
        if self._signer is None or self._signer[1].not_valid_after_utc < datetime.now(UTC) + SIGNER_MARGIN:
            try:
                self._signer = self.ca.content_signer()
            except CardSdkError:
                raise
            except Exception as error:
                raise CaRefusedError(f"The CA has no content signer for the CHUID ({error}).") from error
        return self._signer

    def _record_with(self, job: CardJob, sealed: dict[str, str]):
        """What the CA's recording transaction does first: check the station still holds the card
        (the job's guard), then store the card's secrets."""

        def record(session) -> None:
            if job.guard is not None:
                job.guard(session)
            try:
                self.custody.store_in(session, job.card_id, job.attempt_ref, sealed)
            except Exception as error:  # the type only: a driver's message may quote the row
                raise EncodingFailedError(
                    f"Custody could not store the card's secrets ({type(error).__name__}), so no "
                    "certificate was issued. Set the card aside and tell the administrator.") from error

        return record

    def _issue(self, requests: list[tuple[object, str]], job: CardJob, record_with):
        """Ask the CA for the card's certificates, (public key, certificate type) each; any CA
        failure becomes CaRefusedError."""
        try:
            return self.ca.issue_card(
                requests,
                job.card_number,
                job.validity_days,
                job.attempt_ref,
                card_number=job.card_number,
                record_with=record_with,
                card_uuid=job.card_uuid,
                fascn=job.fascn,
            )
        except CardSdkError:
            raise
        except Exception as error:
            kinds = " and ".join(kind for _key, kind in requests)
            raise CaRefusedError(f"The CA did not issue the {kinds} certificates ({error}).") from error

    def _revoke_after_failure(self, job: CardJob, issued: list[str]) -> None:
        """Revoke what this attempt got issued; the original error stays the one reported."""
        if not issued:
            return
        try:
            self.ca.revoke_attempt(job.attempt_ref, "cessationOfOperation")
        except Exception:
            log.exception("could not revoke the certificates of %s; revoke them by hand", job.attempt_ref)

    def revoke_attempt(self, attempt_ref: str, reason: str) -> list[str]:
        """Revoke every certificate of ``attempt_ref`` (a misprint or spoiled card); returns serials."""
        try:
            return self.ca.revoke_attempt(attempt_ref, reason)
        except CardSdkError:
            raise
        except Exception as error:
            raise CaRefusedError(
                f"The CA could not revoke the certificates of {attempt_ref} ({error})."
            ) from error


def build_encoder(
    transport: str, reader: str | None, profile: str, ca: CertificateAuthority, custody: Custody,
    feeder=None,
) -> Encoder:
    """An encoder for ``transport`` "inprocess" (a fresh virtual card per job) or "pcsc" (``reader``,
    with ``feeder`` bringing each blank card when the station has one)."""
    card_profile = profiles.get(profile)
    if transport == "inprocess":
        source: CardSource = VirtualCardSource(card_profile)
    elif transport == "pcsc":
        source = PcscCardSource(reader, feeder=feeder)
    else:
        raise ValueError(f"unknown card transport {transport!r}; use 'inprocess' or 'pcsc'")
    return Encoder(source, ca, custody, card_profile)
