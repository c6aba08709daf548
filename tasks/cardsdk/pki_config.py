"""The CA's configuration as data: certificate profiles per slot, CRL and OCSP timings, public URLs.

The defaults ship as ``certificate_profiles.json`` next to this module; an installation names its
own copy in ``CARDFLOW_CERTIFICATE_PROFILES``. Every value is checked when the file is read, and a
bad one is refused with the place it sits in the file (``certificates › Card Authentication ›
policies: ...``), so a typo never reaches a certificate.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

DEFAULT_PROFILES_FILE = Path(__file__).with_name("certificate_profiles.json")
DEFAULT_PUBLIC_BASE_URL = "http://127.0.0.1:5000"
# The certificate types a card slot holds, and the CA's own content signer (CHUID, Security Object).
CARD_CERTIFICATES = ("PIV Authentication", "Digital Signature", "Key Management", "Card Authentication")
CONTENT_SIGNING = "Content Signing"
# Types whose subjectAltName FIPS 201-3 requires to carry the FASC-N and the card UUID.
SAN_REQUIRED = ("PIV Authentication", "Card Authentication")
MAX_FILE_BYTES = 256 * 1024

ID_PIV_FASCN = ObjectIdentifier("2.16.840.1.101.3.6.6")
ID_PIV_CONTENT_SIGNING = ObjectIdentifier("2.16.840.1.101.3.6.7")
ID_PIV_CARD_AUTH = ObjectIdentifier("2.16.840.1.101.3.6.8")
ID_MS_SMARTCARD_LOGON = ObjectIdentifier("1.3.6.1.4.1.311.20.2.2")

EXTENDED_KEY_USAGES = {
    "clientAuth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "emailProtection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "msSmartcardLogon": ID_MS_SMARTCARD_LOGON,
    "pkinitClient": ObjectIdentifier("1.3.6.1.5.2.3.4"),
    "pivCardAuth": ID_PIV_CARD_AUTH,
    "pivContentSigning": ID_PIV_CONTENT_SIGNING,
}
# keyManagement: keyEncipherment for an RSA key, keyAgreement for an EC key (SP 800-78-4).
KEY_USAGES = ("digitalSignature", "nonRepudiation", "keyEncipherment", "keyAgreement", "keyManagement")
SUBJECT_ATTRIBUTES = {
    "CN": NameOID.COMMON_NAME, "O": NameOID.ORGANIZATION_NAME, "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "C": NameOID.COUNTRY_NAME, "serialNumber": NameOID.SERIAL_NUMBER,
}
SAN_KINDS = ("fascn", "uuid")
SLOT_NAMES = {"PIV Authentication": "9A", "Digital Signature": "9C", "Key Management": "9D",
              "Card Authentication": "9E"}
OID = re.compile(r"[0-2](\.(0|[1-9][0-9]{0,39})){1,30}")
PLACEHOLDER = "{card_number}"
TOP_KEYS = {"_comment", "ca", "crl", "ocsp", "certificates"}
PROFILE_KEYS = {"slot", "subject", "key_usage", "extended_key_usage", "extended_key_usage_critical",
                "subject_alt_name", "policies", "validity_days"}


class PkiConfigError(ValueError):
    """The certificate profiles file (or the public base URL) is not usable; the message says where."""


@dataclass(frozen=True)
class CertificateProfile:
    """What one type of certificate carries: subject template, usages, names, policies."""

    name: str
    subject: tuple[tuple[str, str], ...]
    key_usage: tuple[str, ...]
    extended_key_usage: tuple[ObjectIdentifier, ...]
    extended_key_usage_critical: bool
    subject_alt_name: tuple[str, ...]
    policies: tuple[ObjectIdentifier, ...]
    slot: str | None = None
    validity_days: int | None = None

    def subject_name(self, card_number: str) -> x509.Name:
        """The subject with ``{card_number}`` put in (plain replacement: no format mini-language)."""
        return x509.Name([x509.NameAttribute(SUBJECT_ATTRIBUTES[key], value.replace(PLACEHOLDER, card_number))
                          for key, value in self.subject])

    def key_usage_for(self, public_key) -> x509.KeyUsage:
        """KeyUsage for this profile; keyManagement follows the key's algorithm."""
        usages = set(self.key_usage)
        managing = "keyManagement" in usages
        return x509.KeyUsage(
            digital_signature="digitalSignature" in usages,
            content_commitment="nonRepudiation" in usages,
            key_encipherment="keyEncipherment" in usages
            or (managing and isinstance(public_key, rsa.RSAPublicKey)),
            data_encipherment=False,
            key_agreement="keyAgreement" in usages
            or (managing and isinstance(public_key, ec.EllipticCurvePublicKey)),
            key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False)


@dataclass(frozen=True)
class PkiConfig:
    """The whole CA configuration; ``public_base_url`` is where the product serves /pki/."""

    ca_subject: tuple[tuple[str, str], ...]
    ca_validity_days: int
    crl_next_update_hours: int
    crl_refresh_before_hours: int
    responder_validity_days: int
    answer_validity_hours: int
    profiles: dict[str, CertificateProfile]
    public_base_url: str = DEFAULT_PUBLIC_BASE_URL
    source: str = field(default="certificate_profiles.json", compare=False)

    @property
    def ca_name(self) -> x509.Name:
        """The CA's distinguished name."""
        return x509.Name([x509.NameAttribute(SUBJECT_ATTRIBUTES[key], value)
                          for key, value in self.ca_subject])

    @property
    def ca_policies(self) -> tuple[ObjectIdentifier, ...]:
        """Every policy a profile asserts, in order of first use: the CA certificate carries them all."""
        seen: dict[ObjectIdentifier, None] = {}
        for profile in self.profiles.values():
            seen.update(dict.fromkeys(profile.policies))
        return tuple(seen)

    @property
    def ca_certificate_url(self) -> str:
        """AIA caIssuers: the CA certificate, DER."""
        return f"{self.public_base_url}/pki/ca.crt"

    @property
    def crl_url(self) -> str:
        """CRL distribution point: the current CRL, DER."""
        return f"{self.public_base_url}/pki/crl"

    @property
    def ocsp_url(self) -> str:
        """AIA OCSP: the product's responder."""
        return f"{self.public_base_url}/pki/ocsp"

    def profile(self, name: str) -> CertificateProfile | None:
        """The profile of certificate type ``name``, or None."""
        return self.profiles.get(name)


def check_public_base_url(value: str) -> str:
    """Where relying parties reach the product: http(s)://host[:port][/path], no slash at the end."""
    text = value.strip() if isinstance(value, str) else ""
    parts = urlsplit(text)
    if (parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password
            or parts.query or parts.fragment or not text.isascii() or any(c.isspace() or c in "\"<>\\^`{|}"
                                                                        for c in text)):
        raise PkiConfigError(f"CARDFLOW_PUBLIC_BASE_URL must be an http:// or https:// address such as "
                             f"{DEFAULT_PUBLIC_BASE_URL} (no user, query or fragment), not {value!r}.")
    try:
        parts.port  # noqa: B018  (a port out of range raises here)
    except ValueError:
        raise PkiConfigError(f"CARDFLOW_PUBLIC_BASE_URL has a port out of range: {value!r}.") from None
    return text.rstrip("/")


def load(path: Path | None = None, public_base_url: str = DEFAULT_PUBLIC_BASE_URL) -> PkiConfig:
    """Read and check the profiles file (default: the shipped one)."""
    path = Path(path) if path else DEFAULT_PROFILES_FILE
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise PkiConfigError(f"certificate profiles file {path.name}: cannot be read "
                             f"({error.strerror}).") from None
    if len(raw) > MAX_FILE_BYTES:
        raise PkiConfigError(f"certificate profiles file {path.name}: larger than "
                             f"{MAX_FILE_BYTES // 1024} KB.")
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError) as error:
        raise PkiConfigError(f"certificate profiles file {path.name}: not JSON ({error}).") from None
    return parse(document, public_base_url, source=path.name)


def parse(document, public_base_url: str = DEFAULT_PUBLIC_BASE_URL, source: str = "profiles") -> PkiConfig:
    """Check a decoded profiles document; PkiConfigError names the first fault and where it is."""
    checker = _Checker(source)
    top = checker.mapping(document, (), TOP_KEYS, required={"ca", "crl", "ocsp", "certificates"})
    ca = checker.mapping(top["ca"], ("ca",), {"subject", "validity_days"}, required={"subject"})
    crl = checker.mapping(top["crl"], ("crl",), {"next_update_hours", "refresh_before_hours"},
                          required={"next_update_hours", "refresh_before_hours"})
    ocsp = checker.mapping(top["ocsp"], ("ocsp",), {"responder_validity_days", "answer_validity_hours"},
                           required={"responder_validity_days", "answer_validity_hours"})
    next_update = checker.number(crl["next_update_hours"], ("crl", "next_update_hours"), 1, 24 * 366)
    refresh = checker.number(crl["refresh_before_hours"], ("crl", "refresh_before_hours"), 1, 24 * 366)
    if refresh >= next_update:
        checker.fail(("crl", "refresh_before_hours"), "must be less than next_update_hours, or every sweep "
                     "would sign a new CRL")
    kinds = (*CARD_CERTIFICATES, CONTENT_SIGNING)
    certificates = checker.mapping(top["certificates"], ("certificates",), set(kinds), required=set(kinds))
    profiles = {name: checker.profile(name, certificates[name]) for name in kinds}
    return PkiConfig(
        ca_subject=checker.subject(ca["subject"], ("ca", "subject"), templated=False),
        ca_validity_days=checker.number(ca.get("validity_days", 3650), ("ca", "validity_days"), 30, 36500),
        crl_next_update_hours=next_update, crl_refresh_before_hours=refresh,
        responder_validity_days=checker.number(ocsp["responder_validity_days"],
                                               ("ocsp", "responder_validity_days"), 2, 366),
        answer_validity_hours=checker.number(ocsp["answer_validity_hours"], ("ocsp", "answer_validity_hours"),
                                             1, 24 * 7),
        profiles=profiles, public_base_url=check_public_base_url(public_base_url), source=source)


class _Checker:
    """Shape checks that name the place of a fault."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: tuple, message: str):
        place = " › ".join(str(part) for part in where) or "the top level"
        raise PkiConfigError(f"certificate profiles file {self.source}: {place}: {message}.")

    def mapping(self, value, where: tuple, allowed: set[str], required: set[str] = frozenset()) -> dict:
        if not isinstance(value, dict):
            self.fail(where, "must be an object")
        unknown = sorted(set(value) - allowed)
        if unknown:
            known = ", ".join(sorted(allowed - {"_comment"}))
            self.fail(where, f"unknown key {unknown[0]!r}; known: {known}")
        missing = sorted(required - set(value))
        if missing:
            self.fail(where, f"{missing[0]!r} is missing")
        return value

    def number(self, value, where: tuple, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.fail(where, f"must be a whole number from {low} to {high}, not {value!r}")
        return value

    def strings(self, value, where: tuple, allowed=None, limit: int = 16) -> tuple[str, ...]:
        if (not isinstance(value, list) or len(value) > limit
                or not all(isinstance(item, str) for item in value)):
            self.fail(where, f"must be a list of at most {limit} strings")
        if len(set(value)) != len(value):
            self.fail(where, "lists a value twice")
        for item in value:
            if allowed is not None and item not in allowed:
                self.fail(where, f"{item!r} is not one of {', '.join(allowed)}")
        return tuple(value)

    def oid(self, text: str, where: tuple) -> ObjectIdentifier:
        if not OID.fullmatch(text):
            self.fail(where, f"{text!r} is not an object identifier (dotted numbers such as "
                             "2.16.840.1.101.3.2.1.3.13)")
        return ObjectIdentifier(text)

    def subject(self, value, where: tuple, templated: bool) -> tuple[tuple[str, str], ...]:
        self.mapping(value, where, set(SUBJECT_ATTRIBUTES), required={"CN"})
        pairs = []
        for key, text in value.items():
            if not isinstance(text, str) or not 0 < len(text) <= 64 or not text.isprintable():
                self.fail((*where, key), "must be 1 to 64 printable characters")
            rest = text.replace(PLACEHOLDER, "") if templated else text
            if "{" in rest or "}" in rest:
                self.fail((*where, key), f"may hold {PLACEHOLDER} and no other braces" if templated
                          else "may not hold braces")
            if key == "C" and not (len(text) == 2 and text.isascii() and text.isupper()):
                self.fail((*where, key), "must be a two-letter country code such as DE")
            pairs.append((key, text))
        return tuple(pairs)

    def profile(self, name: str, value) -> CertificateProfile:
        where = ("certificates", name)
        card = name in CARD_CERTIFICATES
        self.mapping(value, where, PROFILE_KEYS - ({"validity_days"} if card else {"slot"}),
                     required={"subject", "key_usage", "extended_key_usage", "subject_alt_name", "policies"}
                     | ({"slot"} if card else set()))
        if card and value["slot"] != SLOT_NAMES[name]:
            self.fail((*where, "slot"), f"the {name} key is in slot {SLOT_NAMES[name]} (SP 800-73-4)")
        usages = self.strings(value["key_usage"], (*where, "key_usage"), KEY_USAGES)
        if not usages:
            self.fail((*where, "key_usage"), "needs at least one usage")
        eku_names = self.strings(value["extended_key_usage"], (*where, "extended_key_usage"))
        ekus = tuple(EXTENDED_KEY_USAGES[item] if item in EXTENDED_KEY_USAGES
                     else self.oid(item, (*where, "extended_key_usage")) for item in eku_names)
        critical = value.get("extended_key_usage_critical", False)
        if not isinstance(critical, bool):
            self.fail((*where, "extended_key_usage_critical"), "must be true or false")
        if name == "Card Authentication" and (ID_PIV_CARD_AUTH not in ekus or not critical):
            self.fail((*where, "extended_key_usage"), "must hold pivCardAuth and be critical (FIPS 201-3)")
        if name == CONTENT_SIGNING and ID_PIV_CONTENT_SIGNING not in ekus:
            self.fail((*where, "extended_key_usage"), "must hold pivContentSigning (FIPS 201-3)")
        if critical and not ekus:
            self.fail((*where, "extended_key_usage_critical"),
                      "an empty extended key usage cannot be critical")
        san = self.strings(value["subject_alt_name"], (*where, "subject_alt_name"), SAN_KINDS)
        if name in SAN_REQUIRED and set(san) != set(SAN_KINDS):
            self.fail((*where, "subject_alt_name"), "must hold fascn and uuid (FIPS 201-3, 4.2.2)")
        policies = tuple(self.oid(item, (*where, "policies"))
                         for item in self.strings(value["policies"], (*where, "policies")))
        if not policies:
            self.fail((*where, "policies"), "needs at least one policy OID")
        validity = None
        if not card:
            validity = self.number(value.get("validity_days", 1095), (*where, "validity_days"), 30, 3650)
        return CertificateProfile(
            name=name, subject=self.subject(value["subject"], (*where, "subject"), templated=card),
            key_usage=usages, extended_key_usage=ekus, extended_key_usage_critical=critical,
            subject_alt_name=san, policies=policies, slot=value.get("slot"), validity_days=validity)
