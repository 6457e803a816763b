"""Settings: one prefixed set of environment variables (``FLEET_*``), parsed once into frozen dataclasses.

Every ``FLEET_*`` variable must be one listed in ``KNOWN_KEYS``; a typo is a ``ConfigError`` naming the key, not a
silently ignored setting. Command-line options of the entry points override these values.
"""

from __future__ import annotations

import random
import re
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Final, TypeVar
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from config.errors import ConfigError
from config.shard import Shard, parse_shard, shard_of
from config.wire import WHOLE_FLEET, bridge_status_topic, valid_meter_id

PREFIX: Final = "FLEET_"
PROFILES: Final = ("classic", "realistic")

DEFAULT_MQTT_HOST: Final = "127.0.0.1"
DEFAULT_MQTT_PORT: Final = 1883
DEFAULT_MQTTS_PORT: Final = 8883
DEFAULT_HTTP_HOST: Final = "127.0.0.1"
DEFAULT_HTTP_PORT: Final = 5000
DEFAULT_SPEED: Final = 1.0
DEFAULT_PROFILE: Final = "realistic"
DEFAULT_CLIMATE: Final = "new-delhi"
# The keys of config.realistic.CLIMATES (a test checks they agree): parsing a setting need not build the realistic
# profile's parameters (a dozen dataclasses, ~15 ms of import) that a classic run never uses.
CLIMATE_NAMES: Final = ("new-delhi", "phoenix", "brisbane")
DEFAULT_TZ: Final = "UTC"
DEFAULT_HOUSEHOLDS: Final = ("A", "B", "C")
DEFAULT_GRACE_S: Final = 0  # late readings are corrected by SSE `event: revision` (bridge.streams)
DEFAULT_HISTORY_S: Final = 2 * 86_400
DEFAULT_HEARTBEAT_S: Final = 15.0
DEFAULT_LOG_LEVEL: Final = "INFO"
DEFAULT_DATA_DIR: Final = "data"
DEFAULT_RETENTION_S: Final = 7 * 86_400
STORES: Final = ("readings", "aggregates")
DEFAULT_STATS_SPAN_S: Final = 86_400
# A meter's first start publishes this much past data before it goes live (``python -m simulator run``; 0: off), so
# the bridge's statistics, replays and the dashboard's last hour have data at once. At most MAX_WARMUP_S.
DEFAULT_WARMUP_S: Final = 86_400
MAX_WARMUP_S: Final = 7 * 86_400
DEFAULT_AGG_INTERVALS: Final = (60,)
DEFAULT_HA_PREFIX: Final = "homeassistant"
# The bridge's client id without a fleet secret (FLEET_MQTT_ANONYMOUS, or a URL with its own login); with the secret
# the default is derived from it (config.secret.bridge_settings, config.credentials.bridge_client_id).
DEFAULT_BRIDGE_ID: Final = "bridge-fleet"

# Every setting, with what it means (README lists the same table).
KNOWN_KEYS: Final[dict[str, str]] = {
    "FLEET_BROKER": (
        "where clients connect, mqtt[s]://[user:pass@]host:port, or a comma-separated list of such URLs (one scheme):"
        " clients fail over between them (default mqtt://FLEET_MQTT_HOST:FLEET_MQTT_PORT)"
    ),
    "FLEET_MQTT_HOST": "broker host; the embedded broker binds it (default 127.0.0.1)",
    # The embedded broker always binds FLEET_MQTT_HOST:FLEET_MQTT_PORT, whatever FLEET_BROKER says.
    "FLEET_MQTT_PORT": "broker port (default 1883)",
    "FLEET_HTTP_HOST": "bridge HTTP bind address (default 127.0.0.1)",
    "FLEET_HTTP_PORT": "bridge HTTP port (default 5000)",
    "FLEET_SPEED": "simulation speed, simulated seconds per wall second (default 1)",
    "FLEET_START": "simulated time of day to start at, HH:MM:SS (default: now)",
    "FLEET_PROFILE": "meter profile: realistic (default) or classic (the original schedules, exactly)",
    "FLEET_CLIMATE": "climate of the realistic profile: new-delhi (default), phoenix or brisbane",
    "FLEET_TZ": "IANA time zone of the households' schedules and of midnight (default UTC)",
    "FLEET_SEED": "fleet seed, a whole number >= 0 (default: fresh entropy, logged)",
    "FLEET_HOUSEHOLDS": "households the bridge knows before it hears them (default A,B,C)",
    "FLEET_GRACE_S": "seconds of simulated time a window waits for late readings (default 0)",
    "FLEET_HISTORY_S": "seconds of per-second history the bridge keeps in memory (default 172800)",
    "FLEET_HEARTBEAT_S": "seconds between SSE heartbeat comments (default 15)",
    "FLEET_LOG_LEVEL": "DEBUG, INFO, WARNING or ERROR (default INFO)",
    "FLEET_DATA_DIR": "directory of the bridge history and the meters outbox (default ./data)",
    "FLEET_RETENTION_S": "seconds of history the bridge keeps on disk (default 604800: 7 days)",
    "FLEET_STORE": "what the bridge stores on disk: readings (default) or aggregates (large fleets: windows only)",
    "FLEET_STATS_SPAN_S": "seconds of history behind the quick statistics (default 86400)",
    "FLEET_WARMUP": (
        "on a meter's first start, past data it publishes before going live, e.g. 24h, 90m, 0 (off), at most 7d"
        " (default 24h; with --fleet 0)"
    ),
    "FLEET_AGG_INTERVALS": "window lengths (s) the bridge republishes on meters/<id>/agg/<interval>s (default 60)",
    "FLEET_HA_DISCOVERY": "publish Home Assistant MQTT discovery: true (default) or false",
    "FLEET_HA_PREFIX": "Home Assistant discovery prefix (default homeassistant)",
    "FLEET_BRIDGE_ID": "MQTT client id of the bridge, bridge-...; one per bridge (default derived from the secret)",
    "FLEET_SHARD": "k/n: this bridge owns the households of FLEET_HOUSEHOLDS with crc32(id) % n == k (default: all)",
    "FLEET_CORS_ORIGINS": "comma-separated origins allowed to call the HTTP API from a browser (default none)",
    "FLEET_MQTT_ANONYMOUS": "true: the embedded broker lets anyone in and clients do not log in (default false)",
    "FLEET_MQTT_SECRET": "file of the secret all MQTT passwords derive from (default FLEET_DATA_DIR/mqtt-secret)",
    "FLEET_MQTT_TLS_CA": "CA certificate file clients trust; meters and bridge then connect with TLS (default none)",
    "FLEET_MQTT_TLS_CERT": "certificate file (PEM) of the embedded broker: its listener speaks TLS (needs the key)",
    "FLEET_MQTT_TLS_KEY": "private key file (PEM) of FLEET_MQTT_TLS_CERT",
}

_T = TypeVar("_T")
_HMS_RE: Final = re.compile(r"([0-9]{1,2}):([0-9]{2}):([0-9]{2})")


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where an MQTT client connects, and how: TLS (trusting ``tls_ca``, or the system's CAs if None) and either the
    URL's own user name and password or passwords derived from the fleet ``secret``.

    ``fallbacks``: the other brokers of a list (``FLEET_BROKER=url1,url2,...``), each a plain address (no fallbacks of
    its own), all with this one's scheme. This address is the list's first; ``url()``, ``host`` and ``port`` are
    its own, so code that needs "the" broker keeps working; ``addresses()`` is the whole list."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False
    tls_ca: str | None = None
    secret: bytes | None = field(default=None, repr=False)
    fallbacks: tuple[BrokerAddress, ...] = ()

    def __post_init__(self) -> None:
        for other in self.fallbacks:
            if other.fallbacks:
                raise ValueError("a fallback broker has no fallbacks of its own")
            if other.tls != self.tls:
                raise ValueError("every broker of a list uses the same scheme")

    def addresses(self) -> tuple[BrokerAddress, ...]:
        """Every broker of the list, this one first, each without fallbacks."""
        return (replace(self, fallbacks=()) if self.fallbacks else self, *self.fallbacks)

    def each(self, change: Callable[[BrokerAddress], BrokerAddress]) -> BrokerAddress:
        """The list with ``change`` applied to every address of it (TLS, the fleet secret)."""
        first, *rest = (change(address) for address in self.addresses())
        return replace(first, fallbacks=tuple(rest))

    def urls(self) -> str:
        """Every broker's ``url()``, comma-separated (for logs)."""
        return ",".join(address.url() for address in self.addresses())

    def order_for(self, client_id: str) -> tuple[BrokerAddress, ...]:
        """The brokers in the order client ``client_id`` tries them (round robin from the first): its first is
        ``shard_of(client_id, n)``, the rest a permutation seeded by the same CRC-32, so that the clients of a dead
        broker spread over the others by their ids instead of all moving to the one after it."""
        addresses = self.addresses()
        first = shard_of(client_id, len(addresses))
        rest = [address for index, address in enumerate(addresses) if index != first]
        random.Random(zlib.crc32(client_id.encode("utf-8"))).shuffle(rest)  # seeded: the same on every run
        return (addresses[first], *rest)

    def url(self) -> str:
        """The address as an ``mqtt://`` (``mqtts://`` with TLS) URL without the password."""
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"

    def login(self, user: str) -> tuple[str, str | None] | None:
        """User name and password for client ``user`` (a meter id, or bridge/homeassistant/observer): the URL's
        own if it has a user name, else derived from the fleet secret; None to connect anonymously."""
        if self.username:
            return self.username, self.password
        if self.secret is not None:
            # Imported here: the hashing libraries (bcrypt, argon2) only matter to a client that logs in, not to
            # every user of the settings (`python -m simulator generate`).
            from config.credentials import password_for

            return user, password_for(self.secret, user)
        return None


@dataclass(frozen=True, slots=True)
class Settings:
    """All settings of the fleet; entry points take what they need."""

    broker: BrokerAddress
    mqtt_host: str
    mqtt_port: int
    http_host: str
    http_port: int
    speed: float
    start_s: int | None
    profile: str
    climate: str
    tz: str
    seed: int | None
    households: tuple[str, ...]
    grace_s: int
    history_s: int
    heartbeat_s: float
    log_level: str
    data_dir: str = DEFAULT_DATA_DIR
    retention_s: int = DEFAULT_RETENTION_S
    store: str = "readings"
    stats_span_s: int = DEFAULT_STATS_SPAN_S
    agg_intervals: tuple[int, ...] = DEFAULT_AGG_INTERVALS
    ha_discovery: bool = True
    ha_prefix: str = DEFAULT_HA_PREFIX
    bridge_id: str = ""  # empty: not set, derived at start (config.secret.bridge_settings)
    cors_origins: tuple[str, ...] = ()
    mqtt_anonymous: bool = False
    mqtt_secret: str = ""  # empty: <data_dir>/mqtt-secret (config.secret.secret_path)
    mqtt_tls_ca: str | None = None
    mqtt_tls_cert: str | None = None
    mqtt_tls_key: str | None = None
    shard: Shard | None = None  # None: this bridge owns every meter (configured or heard)
    warmup_s: int | None = None  # None: not set (the simulator's default: DEFAULT_WARMUP_S, with --fleet 0)

    def zone(self) -> ZoneInfo:
        """The fleet's time zone."""
        return ZoneInfo(self.tz)

    def owns(self, meter_id: str) -> bool:
        """Whether this bridge owns ``meter_id``: every meter, unless ``shard`` is set."""
        return self.shard is None or self.shard.owns(meter_id)

    def owned_households(self) -> tuple[str, ...]:
        """The configured households this bridge owns (all of them unless ``shard`` is set)."""
        return self.households if self.shard is None else self.shard.owned(self.households)

    def bridge_status_topic(self) -> str:
        """This bridge's retained availability topic, named for its shard (never for its client id, a secret)."""
        return bridge_status_topic(WHOLE_FLEET if self.shard is None else self.shard.name)


def parse_broker_url(text: str, key: str = "FLEET_BROKER") -> BrokerAddress:
    """Parse ``mqtt://[user:pass@]host[:port]`` (``mqtts://`` for TLS, default port 8883)."""
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(key, f"not a broker URL: {text!r} ({exc})") from exc
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ConfigError(key, f"scheme must be mqtt:// or mqtts:// (got {text!r})")
    if not parts.hostname:
        raise ConfigError(key, f"no host in {text!r}")
    if port is not None and not 1 <= port <= 65535:
        raise ConfigError(key, f"port must be 1-65535 in {text!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(key, f"unexpected path or query in {text!r}")
    tls = parts.scheme == "mqtts"
    return BrokerAddress(
        host=parts.hostname,
        port=port if port is not None else DEFAULT_MQTTS_PORT if tls else DEFAULT_MQTT_PORT,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls=tls,
    )


def parse_broker_urls(text: str, key: str = "FLEET_BROKER") -> BrokerAddress:
    """A comma-separated list of broker URLs (``parse_broker_url`` each, one scheme for all, repeats dropped): the
    first, with the others as its ``fallbacks``. One URL is that URL's address, exactly."""
    entries = [entry.strip() for entry in text.split(",")]
    addresses: list[BrokerAddress] = []
    for position, entry in enumerate(entries, 1):
        if not entry:
            raise ConfigError(key, f"entry {position} of {len(entries)} is empty in {text!r}")
        address = parse_broker_url(entry, key)
        if addresses and address.tls != addresses[0].tls:
            raise ConfigError(key, f"{entry!r} does not use the scheme of {entries[0]!r}: one scheme for every broker")
        if address not in addresses:  # a repeat collapses into its first mention
            addresses.append(address)
    first, *rest = addresses
    return replace(first, fallbacks=tuple(rest))


def parse_time_of_day(text: str, key: str = "FLEET_START") -> int:
    """Seconds since midnight of ``HH:MM:SS``."""
    match = _HMS_RE.fullmatch(text.strip())
    if match is None:
        raise ConfigError(key, f"expected HH:MM:SS, got {text!r}")
    hours, minutes, seconds = (int(group) for group in match.groups())
    if hours > 23 or minutes > 59 or seconds > 59:
        raise ConfigError(key, f"not a time of day: {text!r}")
    return hours * 3600 + minutes * 60 + seconds


def parse_port(text: str, key: str) -> int:
    """A TCP port 1-65535."""
    port = _int(text, key)
    if not 1 <= port <= 65535:
        raise ConfigError(key, f"port must be 1-65535, got {port}")
    return port


def parse_speed(text: str, key: str = "FLEET_SPEED") -> float:
    """A simulation speed: a finite number in (0, 100000]."""
    return parse_float_in(text, key, 0.0, 100_000.0)


def parse_households(text: str, key: str = "FLEET_HOUSEHOLDS") -> tuple[str, ...]:
    """Comma-separated meter ids."""
    ids = tuple(part.strip() for part in text.split(",") if part.strip())
    if not ids:
        raise ConfigError(key, "no households given")
    for meter_id in ids:
        if not valid_meter_id(meter_id):
            raise ConfigError(key, f"bad meter id {meter_id!r}")
    return ids


def parse_climate(text: str, key: str = "FLEET_CLIMATE") -> str:
    """A climate preset of the realistic profile."""
    name = text.strip().lower()
    if name not in CLIMATE_NAMES:
        raise ConfigError(key, f"unknown climate {text!r} (known: {', '.join(CLIMATE_NAMES)})")
    return name


def parse_tz(text: str, key: str = "FLEET_TZ") -> str:
    """An IANA time zone name."""
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(key, f"unknown time zone {text!r}") from exc
    return text


def _int(text: str, key: str) -> int:
    try:
        return int(text.strip())
    except ValueError as exc:
        raise ConfigError(key, f"not a whole number: {text!r}") from exc


def _get(env: Mapping[str, str], key: str, parse: Callable[[str], _T], default: _T) -> _T:
    raw = env.get(key)
    if raw is None or raw.strip() == "":
        return default
    return parse(raw)


def parse_int_in(text: str, key: str, low: int, high: int) -> int:
    """A whole number in ``[low, high]``."""
    value = _int(text, key)
    if not low <= value <= high:
        raise ConfigError(key, f"must be {low}-{high}, got {value}")
    return value


def parse_float_in(text: str, key: str, low: float, high: float) -> float:
    """A number in ``(low, high]``."""
    try:
        value = float(text)
    except ValueError as exc:
        raise ConfigError(key, f"not a number: {text!r}") from exc
    if not low < value <= high:
        raise ConfigError(key, f"must be > {low:g} and <= {high:g}, got {text!r}")
    return value


def _choice(key: str, choices: tuple[str, ...]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in choices:
            raise ConfigError(key, f"must be one of {', '.join(choices)}, got {text!r}")
        return value

    return parse


_DURATION_RE: Final = re.compile(r"([0-9]{1,7})([smhd]?)")
_UNIT_S: Final = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400}


def parse_duration(text: str, key: str, high_s: int = 31 * 86_400) -> int:
    """A duration such as ``90``, ``90s``, ``15m``, ``24h`` or ``7d``, in seconds, 0..``high_s``."""
    match = _DURATION_RE.fullmatch(text.strip().lower())
    if match is None:
        raise ConfigError(key, f"expected a duration such as 90s, 15m, 24h or 7d, got {text!r}")
    seconds = int(match.group(1)) * _UNIT_S[match.group(2)]
    if seconds > high_s:
        raise ConfigError(key, f"at most {high_s} s, got {text!r}")
    return seconds


def parse_bool(text: str, key: str) -> bool:
    """true/false, yes/no, on/off, 1/0."""
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(key, f"expected true or false, got {text!r}")


def parse_intervals(text: str, key: str = "FLEET_AGG_INTERVALS") -> tuple[int, ...]:
    """Comma-separated window lengths in whole seconds, 1-86400, without repeats (empty: none)."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    values = tuple(parse_int_in(part, key, 1, 86_400) for part in parts)
    if len(set(values)) != len(values):
        raise ConfigError(key, f"an interval is given twice in {text!r}")
    return values


def parse_client_id(text: str, key: str = "FLEET_BRIDGE_ID") -> str:
    """An MQTT client id: 1-23 characters of ``[A-Za-z0-9_-]`` (what every MQTT 3.1.1 broker must accept)."""
    value = text.strip()
    if re.fullmatch(r"[A-Za-z0-9_-]{1,23}", value) is None:
        raise ConfigError(key, f"a client id is 1-23 letters, digits, '_' or '-', not {value[:40]!r}")
    return value


def parse_bridge_id(text: str, key: str = "FLEET_BRIDGE_ID") -> str:
    """The bridge's client id: a client id (``parse_client_id``) that starts with ``bridge-``, the prefix that only
    the bridge's login may use (config.credentials.client_id_refusal)."""
    from config.credentials import BRIDGE_CLIENT_PREFIX  # as in BrokerAddress.login: set FLEET_BRIDGE_ID, bridge only

    value = parse_client_id(text, key)
    if not value.startswith(BRIDGE_CLIENT_PREFIX) or value == BRIDGE_CLIENT_PREFIX:
        raise ConfigError(key, f"the bridge's client id starts with {BRIDGE_CLIENT_PREFIX!r} (bridge-0), not {value!r}")
    return value


def parse_topic_prefix(text: str, key: str) -> str:
    """An MQTT topic prefix: no wildcards, no leading or trailing slash, not empty."""
    value = text.strip()
    if not value or any(c in value for c in "+#\0") or value.startswith("/") or value.endswith("/"):
        raise ConfigError(key, f"not a topic prefix: {text!r}")
    return value


def parse_origins(text: str, key: str = "FLEET_CORS_ORIGINS") -> tuple[str, ...]:
    """Comma-separated origins such as ``http://localhost:8080`` (scheme://host[:port]), or ``*``."""
    origins = tuple(part.strip().rstrip("/") for part in text.split(",") if part.strip())
    for origin in origins:
        parts = urlsplit(origin)
        if origin != "*" and (parts.scheme not in ("http", "https") or not parts.netloc or parts.path):
            raise ConfigError(key, f"not an origin: {origin!r}")
    return origins


def _bounded_int(key: str, low: int, high: int) -> Callable[[str], int]:
    return lambda text: parse_int_in(text, key, low, high)


def load_settings(env: Mapping[str, str]) -> Settings:
    """Parse the ``FLEET_*`` variables of ``env`` (unknown ``FLEET_*`` keys are an error)."""
    unknown = sorted(key for key in env if key.startswith(PREFIX) and key not in KNOWN_KEYS)
    if unknown:
        raise ConfigError(unknown[0], f"unknown setting (known: {', '.join(KNOWN_KEYS)})")
    host = _get(env, "FLEET_MQTT_HOST", str.strip, DEFAULT_MQTT_HOST)
    port = _get(env, "FLEET_MQTT_PORT", lambda t: parse_port(t, "FLEET_MQTT_PORT"), DEFAULT_MQTT_PORT)
    broker = _get(env, "FLEET_BROKER", parse_broker_urls, BrokerAddress(host, port))
    level = _get(env, "FLEET_LOG_LEVEL", lambda t: t.strip().upper(), DEFAULT_LOG_LEVEL)
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError("FLEET_LOG_LEVEL", f"unknown level {level!r}")
    profile = _get(env, "FLEET_PROFILE", lambda t: t.strip().lower(), DEFAULT_PROFILE)
    if profile not in PROFILES:
        raise ConfigError("FLEET_PROFILE", f"unknown profile {profile!r} (known: {', '.join(PROFILES)})")
    heartbeat = _get(env, "FLEET_HEARTBEAT_S", lambda t: parse_speed(t, "FLEET_HEARTBEAT_S"), DEFAULT_HEARTBEAT_S)
    tls_ca = _get(env, "FLEET_MQTT_TLS_CA", str.strip, None)
    if tls_ca:
        broker = broker.each(lambda address: replace(address, tls=True, tls_ca=tls_ca))
    tls_cert = _get(env, "FLEET_MQTT_TLS_CERT", str.strip, None)
    tls_key = _get(env, "FLEET_MQTT_TLS_KEY", str.strip, None)
    if (tls_cert is None) != (tls_key is None):
        given, missing = ("FLEET_MQTT_TLS_CERT", "FLEET_MQTT_TLS_KEY")[:: 1 if tls_key is None else -1]
        raise ConfigError(given, f"needs {missing} too (the broker's certificate and its key)")
    return Settings(
        broker=broker,
        mqtt_host=host,
        mqtt_port=port,
        http_host=_get(env, "FLEET_HTTP_HOST", str.strip, DEFAULT_HTTP_HOST),
        http_port=_get(env, "FLEET_HTTP_PORT", lambda t: parse_port(t, "FLEET_HTTP_PORT"), DEFAULT_HTTP_PORT),
        speed=_get(env, "FLEET_SPEED", parse_speed, DEFAULT_SPEED),
        start_s=_get(env, "FLEET_START", parse_time_of_day, None),
        profile=profile,
        climate=_get(env, "FLEET_CLIMATE", parse_climate, DEFAULT_CLIMATE),
        tz=_get(env, "FLEET_TZ", parse_tz, DEFAULT_TZ),
        seed=_get(env, "FLEET_SEED", _bounded_int("FLEET_SEED", 0, 2**63 - 1), None),
        households=_get(env, "FLEET_HOUSEHOLDS", parse_households, DEFAULT_HOUSEHOLDS),
        grace_s=_get(env, "FLEET_GRACE_S", _bounded_int("FLEET_GRACE_S", 0, 3600), DEFAULT_GRACE_S),
        history_s=_get(env, "FLEET_HISTORY_S", _bounded_int("FLEET_HISTORY_S", 3600, 31 * 86_400), DEFAULT_HISTORY_S),
        heartbeat_s=heartbeat,
        log_level=level,
        data_dir=_get(env, "FLEET_DATA_DIR", str.strip, DEFAULT_DATA_DIR),
        retention_s=_get(
            env, "FLEET_RETENTION_S", _bounded_int("FLEET_RETENTION_S", 3600, 366 * 86_400), DEFAULT_RETENTION_S
        ),
        store=_get(env, "FLEET_STORE", _choice("FLEET_STORE", STORES), "readings"),
        stats_span_s=_get(
            env, "FLEET_STATS_SPAN_S", _bounded_int("FLEET_STATS_SPAN_S", 60, 31 * 86_400), DEFAULT_STATS_SPAN_S
        ),
        agg_intervals=_get(env, "FLEET_AGG_INTERVALS", parse_intervals, DEFAULT_AGG_INTERVALS),
        ha_discovery=_get(env, "FLEET_HA_DISCOVERY", lambda t: parse_bool(t, "FLEET_HA_DISCOVERY"), True),
        ha_prefix=_get(env, "FLEET_HA_PREFIX", lambda t: parse_topic_prefix(t, "FLEET_HA_PREFIX"), DEFAULT_HA_PREFIX),
        bridge_id=_get(env, "FLEET_BRIDGE_ID", parse_bridge_id, ""),
        cors_origins=_get(env, "FLEET_CORS_ORIGINS", parse_origins, ()),
        mqtt_anonymous=_get(env, "FLEET_MQTT_ANONYMOUS", lambda t: parse_bool(t, "FLEET_MQTT_ANONYMOUS"), False),
        mqtt_secret=_get(env, "FLEET_MQTT_SECRET", str.strip, ""),
        mqtt_tls_ca=tls_ca,
        mqtt_tls_cert=tls_cert,
        mqtt_tls_key=tls_key,
        shard=_get(env, "FLEET_SHARD", parse_shard, None),
        warmup_s=_get(env, "FLEET_WARMUP", lambda t: parse_duration(t, "FLEET_WARMUP", MAX_WARMUP_S), None),
    )
