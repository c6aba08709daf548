"""Settings from the environment and the instance folder; tests pass their own values."""

from __future__ import annotations

import os
import re
import secrets
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _optional_path(value: str | None) -> Path | None:
    return Path(value) if value else None


def _flag(env: dict[str, str], name: str, default: bool) -> bool:
    """A yes/no setting: 1/true/yes/on or 0/false/no/off; anything else is refused by name."""
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be 1/true/yes/on or 0/false/no/off, not {raw!r}.")


def _count(env: dict[str, str], name: str, default: int) -> int:
    """A positive whole number setting; anything else is refused by name."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit() and 0 < int(raw) < 1_000_000):
        raise ValueError(f"{name} must be a whole number from 1 to 999999, not {raw!r}.")
    return int(raw)


@dataclass
class StationSettings:
    """One production station: where its printer spools and how its encoder reaches cards."""

    name: str = "virtual"
    transport: str = "inprocess"  # inprocess | pcsc
    reader: str | None = None  # reader name or pattern, for pcsc
    profile: str = "piv-3des-p256"
    # State file of a local `cardflow virtual-card` process that feeds blank cards (pcsc only).
    virtual_card_state: Path | None = None
    # The pool whose queue the station consumes; an order's cards spread over its stations.
    pool: str = "default"
    printer: str = "spool"  # spool: PNG/PDF files in the instance's spool folder
    # Simulated device time a card (benchmarks and tests; a real printer takes 15 to 24 s).
    device_seconds: float = 0.0


STATION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
STATION_KEYS = {"name", "transport", "reader", "profile", "pool", "printer", "device_seconds",
                "virtual_card_state"}


def load_stations(path: Path) -> dict[str, StationSettings]:
    """Stations from a TOML file of ``[[station]]`` tables; a bad entry is refused by name."""
    try:
        document = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ValueError(f"stations file {path.name}: {error}") from None
    stations: dict[str, StationSettings] = {}
    for number, entry in enumerate(document.get("station", []), start=1):
        where = f"stations file {path.name}, station {number}"
        if not isinstance(entry, dict) or set(entry) - STATION_KEYS:
            unknown = sorted(set(entry) - STATION_KEYS) if isinstance(entry, dict) else []
            raise ValueError(f"{where}: unknown keys {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(STATION_KEYS))}")
        for key in ("name", "pool"):
            if key in entry and not (isinstance(entry[key], str) and STATION_NAME.fullmatch(entry[key])):
                raise ValueError(f"{where}: {key} must be 1-64 letters, digits, '.', '_' or '-'")
        if "name" not in entry:
            raise ValueError(f"{where}: a station needs a name")
        if entry.get("transport", "inprocess") not in ("inprocess", "pcsc"):
            raise ValueError(f"{where}: transport must be inprocess or pcsc")
        seconds = entry.get("device_seconds", 0.0)
        if not isinstance(seconds, int | float) or not 0 <= seconds <= 600:
            raise ValueError(f"{where}: device_seconds must be a number from 0 to 600")
        if entry["name"] in stations:
            raise ValueError(f"{where}: station {entry['name']} is listed twice")
        state = entry.get("virtual_card_state")
        stations[entry["name"]] = StationSettings(
            name=entry["name"], transport=entry.get("transport", "inprocess"), reader=entry.get("reader"),
            profile=entry.get("profile", "piv-3des-p256"), pool=entry.get("pool", "default"),
            printer=entry.get("printer", "spool"), device_seconds=float(seconds),
            virtual_card_state=Path(state) if state else None)
    return stations


@dataclass
class Settings:
    """Everything the product is configured with; ``from_env`` reads ``CARDFLOW_*`` variables."""

    instance_path: Path
    database_url: str
    source_path: Path = PROJECT_ROOT
    secret_key: str = ""
    organisation: str = "cardflow demo organisation"
    station: StationSettings = field(default_factory=StationSettings)
    ca_passphrase: str = ""
    custody_key: str | None = None  # base64; by default a 0600 key file in the instance folder
    runner_threads: int = 2
    # The session cookie only travels over HTTPS (browsers also keep it on http://127.0.0.1).
    secure_cookies: bool = True
    # After this many failed logins in a row the account is locked for login_lock_minutes.
    login_max_failures: int = 5
    login_lock_minutes: int = 15
    # A login session unused for this long ends (the next page asks to log in again).
    session_idle_minutes: int = 120
    # The Ed25519 key that signs audit chain heads; by default a 0600 file in the instance folder.
    # Kept out of the database: whoever can rewrite the database still cannot sign a head.
    audit_key_path: Path | None = None
    # The Celery broker of the station workers (redis://... or amqp://...); None: the in-process
    # runner and the configured station do all the work in this process (the embedded default).
    broker_url: str | None = None
    # Every station the installation has, by name (CARDFLOW_STATIONS_FILE); `station` is this host's.
    stations: dict[str, StationSettings] = field(default_factory=dict)
    # A card claim lapses this long after its worker last renewed it (killed, paused, cut off);
    # renewed every quarter of it, so a live worker never loses it to a hiccup of a second or two.
    claim_seconds: float = 6.0
    # How often every host sweeps: lapsed claims, stalled instances, revocations, lost jobs.
    sweep_seconds: float = 2.0
    # Where relying parties reach this product's /pki/ (CA certificate, CRL, OCSP responder): every
    # certificate names these URLs, so it is set before cards are issued (checked when the CA loads).
    public_base_url: str = "http://127.0.0.1:5000"
    # The CA's certificate profiles (JSON); None: the defaults in tasks/cardsdk/certificate_profiles.json.
    certificate_profiles: Path | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Read settings from ``CARDFLOW_*`` environment variables with embedded defaults."""
        env = dict(os.environ if env is None else env)
        instance = Path(env.get("CARDFLOW_INSTANCE_PATH", PROJECT_ROOT / "instance")).resolve()
        settings = cls(
            instance_path=instance,
            database_url=env.get("CARDFLOW_DATABASE_URL", f"sqlite:///{instance / 'cardflow.db'}"),
            source_path=Path(env.get("CARDFLOW_SOURCE_PATH", PROJECT_ROOT)).resolve(),
            secret_key=env.get("CARDFLOW_SECRET_KEY", ""),
            organisation=env.get("CARDFLOW_ORGANISATION", cls.organisation),
            station=StationSettings(
                name=env.get("CARDFLOW_STATION", "virtual"),
                transport=env.get("CARDFLOW_STATION_TRANSPORT", "inprocess"),
                reader=env.get("CARDFLOW_STATION_READER"),
                profile=env.get("CARDFLOW_CARD_PROFILE", "piv-3des-p256"),
                virtual_card_state=_optional_path(env.get("CARDFLOW_VIRTUAL_CARD_STATE")),
            ),
            ca_passphrase=env.get("CARDFLOW_CA_PASSPHRASE", ""),
            custody_key=env.get("CARDFLOW_CUSTODY_KEY"),
            secure_cookies=_flag(env, "CARDFLOW_SECURE_COOKIES", True),
            login_max_failures=_count(env, "CARDFLOW_LOGIN_MAX_FAILURES", cls.login_max_failures),
            login_lock_minutes=_count(env, "CARDFLOW_LOGIN_LOCK_MINUTES", cls.login_lock_minutes),
            session_idle_minutes=_count(env, "CARDFLOW_SESSION_IDLE_MINUTES", cls.session_idle_minutes),
            audit_key_path=_optional_path(env.get("CARDFLOW_AUDIT_KEY")),
            broker_url=env.get("CARDFLOW_BROKER_URL") or None,
            stations=load_stations(Path(env["CARDFLOW_STATIONS_FILE"])) if env.get("CARDFLOW_STATIONS_FILE")
            else {},
            claim_seconds=float(_count(env, "CARDFLOW_CLAIM_SECONDS", 6)),
            sweep_seconds=float(_count(env, "CARDFLOW_SWEEP_SECONDS", 2)),
            public_base_url=env.get("CARDFLOW_PUBLIC_BASE_URL", "").strip() or cls.public_base_url,
            certificate_profiles=_optional_path(env.get("CARDFLOW_CERTIFICATE_PROFILES")),
        )
        # This host's station, as the stations file describes it (pool, device time...).
        settings.station = settings.stations.get(settings.station.name, settings.station)
        return settings

    def ensure_instance(self) -> None:
        """Create the instance folder (0700: it holds the keys and the database) and, unless
        configured, its persistent random secrets."""
        self.instance_path.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.secret_key = self.secret_key or self._instance_secret("secret_key")
        self.ca_passphrase = self.ca_passphrase or self._instance_secret("ca_passphrase")

    def _instance_secret(self, name: str) -> str:
        """A random secret kept in a 0600 file of the instance folder, created on first use."""
        path = self.instance_path / name
        if not path.exists():
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_urlsafe(32))
        return path.read_text().strip()

    @property
    def spool_path(self) -> Path:
        """Where the station's printer writes card images when no print queue is configured."""
        return self.instance_path / "spool"
