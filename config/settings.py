"""Settings: one prefixed set of environment variables (``FLEET_*``), parsed once into frozen dataclasses.

Each setting is declared once, in ``OPTIONS``: its key, the ``Settings`` field it fills, its parser, default, meaning
and the programs that read it (broker, simulator, bridge). ``KNOWN_KEYS``, ``load_settings``, each program's help
(``settings_help``) and the README's settings table (a test checks it) derive from that table. Every ``FLEET_*``
variable must be one of ``KNOWN_KEYS``; a typo is a ``ConfigError`` naming the key, not a silently ignored setting.
Command-line options of the entry points override these values (each ``__main__``'s ``with_options``).
"""

from __future__ import annotations

import random
import re
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final
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
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")
DEFAULT_DATA_DIR: Final = "data"
DEFAULT_RETENTION_S: Final = 7 * 86_400
STORES: Final = ("readings", "aggregates")
DEFAULT_STORE: Final = "readings"
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
    """All settings of the fleet, as ``load_settings`` parses them from ``OPTIONS`` (which says, for each field, its
    key, default and the programs that read it: ``options_for``)."""

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
    data_dir: str
    retention_s: int
    store: str
    stats_span_s: int
    agg_intervals: tuple[int, ...]
    ha_discovery: bool
    ha_prefix: str
    bridge_id: str  # empty: not set, derived at start (config.secret.bridge_settings)
    cors_origins: tuple[str, ...]
    mqtt_anonymous: bool
    mqtt_secret: str  # empty: <data_dir>/mqtt-secret (config.secret.secret_path)
    mqtt_tls_ca: str | None
    mqtt_tls_cert: str | None
    mqtt_tls_key: str | None
    shard: Shard | None  # None: this bridge owns every meter (configured or heard)
    warmup_s: int | None  # None: not set (the simulator's default: DEFAULT_WARMUP_S, with --fleet 0)

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


# --- The table of options: every setting declared once --------------------------------------------------------------

BROKER: Final = "broker"
SIMULATOR: Final = "simulator"
BRIDGE: Final = "bridge"
PROGRAMS: Final = (BROKER, SIMULATOR, BRIDGE)
_CLIENTS: Final = frozenset({SIMULATOR, BRIDGE})  # the MQTT clients: they connect where FLEET_BROKER says
_ALL: Final = frozenset(PROGRAMS)


@dataclass(frozen=True, slots=True)
class Option:
    """One ``FLEET_*`` setting: its key, the ``Settings`` field it fills, how its text is parsed (``parse(text,
    key)``, raising a ``ConfigError`` naming ``key``), its default (an unset or blank variable), what it means, and
    which programs read it (``python -m broker``, ``python -m simulator``, ``python -m bridge``).

    ``shown``: the default as help and README show it, when the value itself does not say it (a derived default)."""

    key: str
    field: str
    parse: Callable[[str, str], Any]
    default: Any
    help: str
    readers: frozenset[str]
    shown: str = ""

    def default_text(self) -> str:
        """The default as the help shows it."""
        if self.shown:
            return self.shown
        value = self.default
        if isinstance(value, bool):
            return str(value).lower()
        if isinstance(value, float):
            return f"{value:g}"
        if isinstance(value, tuple):
            return ",".join(str(part) for part in value) or "none"
        return str(value)

    def describe(self) -> str:
        """``help (default ...)``: one line of the help text."""
        return f"{self.help} (default {self.default_text()})"


def _text(text: str, key: str) -> str:
    return text.strip()


def _log_level(text: str, key: str) -> str:
    level = text.strip().upper()
    if level not in LOG_LEVELS:
        raise ConfigError(key, f"unknown level {level!r}")
    return level


def _profile(text: str, key: str) -> str:
    profile = text.strip().lower()
    if profile not in PROFILES:
        raise ConfigError(key, f"unknown profile {profile!r} (known: {', '.join(PROFILES)})")
    return profile


def _store(text: str, key: str) -> str:
    value = text.strip().lower()
    if value not in STORES:
        raise ConfigError(key, f"must be one of {', '.join(STORES)}, got {text!r}")
    return value


def _int_in(low: int, high: int) -> Callable[[str, str], int]:
    return lambda text, key: parse_int_in(text, key, low, high)


def _warmup(text: str, key: str) -> int:
    return parse_duration(text, key, MAX_WARMUP_S)


OPTIONS: Final[tuple[Option, ...]] = (
    Option(
        "FLEET_BROKER",
        "broker",
        parse_broker_urls,
        None,  # built from FLEET_MQTT_HOST and FLEET_MQTT_PORT by load_settings
        "where clients connect, mqtt[s]://[user:pass@]host:port, or a comma-separated list of such URLs (one scheme):"
        " clients fail over between them",
        _CLIENTS,
        "mqtt://FLEET_MQTT_HOST:FLEET_MQTT_PORT",
    ),
    # The embedded broker always binds FLEET_MQTT_HOST:FLEET_MQTT_PORT, whatever FLEET_BROKER says; the clients read
    # them as FLEET_BROKER's default.
    Option("FLEET_MQTT_HOST", "mqtt_host", _text, DEFAULT_MQTT_HOST, "broker host; the embedded broker binds it", _ALL),
    Option("FLEET_MQTT_PORT", "mqtt_port", parse_port, DEFAULT_MQTT_PORT, "broker port", _ALL),
    Option("FLEET_HTTP_HOST", "http_host", _text, DEFAULT_HTTP_HOST, "bridge HTTP bind address", frozenset({BRIDGE})),
    Option("FLEET_HTTP_PORT", "http_port", parse_port, DEFAULT_HTTP_PORT, "bridge HTTP port", frozenset({BRIDGE})),
    Option(
        "FLEET_SPEED",
        "speed",
        parse_speed,
        DEFAULT_SPEED,
        "simulation speed, simulated seconds per wall second",
        _CLIENTS,  # the bridge paces replays and judges the meters' health by it
    ),
    Option(
        "FLEET_START",
        "start_s",
        parse_time_of_day,
        None,
        "simulated time of day to start at, HH:MM:SS",
        frozenset({SIMULATOR}),
        "now",
    ),
    Option(
        "FLEET_PROFILE",
        "profile",
        _profile,
        DEFAULT_PROFILE,
        "meter profile: realistic or classic (the original schedules, exactly)",
        frozenset({SIMULATOR}),
    ),
    Option(
        "FLEET_CLIMATE",
        "climate",
        parse_climate,
        DEFAULT_CLIMATE,
        "climate of the realistic profile: new-delhi, phoenix or brisbane",
        frozenset({SIMULATOR}),
    ),
    Option(
        "FLEET_TZ",
        "tz",
        parse_tz,
        DEFAULT_TZ,
        "IANA time zone of the households' schedules and of midnight",
        _CLIENTS,
    ),
    Option(
        "FLEET_SEED",
        "seed",
        _int_in(0, 2**63 - 1),
        None,
        "fleet seed, a whole number >= 0",
        frozenset({SIMULATOR}),
        "fresh, logged",
    ),
    Option(
        "FLEET_HOUSEHOLDS",
        "households",
        parse_households,
        DEFAULT_HOUSEHOLDS,
        "households the bridge knows before it hears them (and the meters the broker lets in)",
        frozenset({BROKER, BRIDGE}),
    ),
    Option(
        "FLEET_GRACE_S",
        "grace_s",
        _int_in(0, 3600),
        DEFAULT_GRACE_S,
        "seconds of simulated time a window waits for late readings",
        frozenset({BRIDGE}),
    ),
    Option(
        "FLEET_HISTORY_S",
        "history_s",
        _int_in(3600, 31 * 86_400),
        DEFAULT_HISTORY_S,
        "seconds of per-second history the bridge keeps in memory",
        frozenset({BRIDGE}),
    ),
    Option(
        "FLEET_HEARTBEAT_S",
        "heartbeat_s",
        parse_speed,  # the same bounds: a finite number in (0, 100000]
        DEFAULT_HEARTBEAT_S,
        "seconds between SSE heartbeat comments",
        frozenset({BRIDGE}),
    ),
    Option("FLEET_LOG_LEVEL", "log_level", _log_level, DEFAULT_LOG_LEVEL, "DEBUG, INFO, WARNING or ERROR", _ALL),
    Option(
        "FLEET_DATA_DIR",
        "data_dir",
        _text,
        DEFAULT_DATA_DIR,
        "directory of the bridge history, the meters outbox and the fleet secret",
        _ALL,
    ),
    Option(
        "FLEET_RETENTION_S",
        "retention_s",
        _int_in(3600, 366 * 86_400),
        DEFAULT_RETENTION_S,
        "seconds of history the bridge keeps on disk (7 days)",
        frozenset({BRIDGE}),
    ),
    Option(
        "FLEET_STORE",
        "store",
        _store,
        DEFAULT_STORE,
        "what the bridge stores on disk: readings or aggregates (large fleets: windows only)",
        frozenset({BRIDGE}),
    ),
    Option(
        "FLEET_STATS_SPAN_S",
        "stats_span_s",
        _int_in(60, 31 * 86_400),
        DEFAULT_STATS_SPAN_S,
        "seconds of history behind the quick statistics",
        frozenset({BRIDGE}),
    ),
    Option(
        "FLEET_WARMUP",
        "warmup_s",
        _warmup,
        None,  # not set: the simulator's default, DEFAULT_WARMUP_S (0 with --fleet)
        "on a meter's first start, past data it publishes before going live, e.g. 24h, 90m, 0 (off), at most 7d",
        frozenset({SIMULATOR}),
        "24h (0 with --fleet)",
    ),
    Option(
        "FLEET_AGG_INTERVALS",
        "agg_intervals",
        parse_intervals,
        DEFAULT_AGG_INTERVALS,
        "window lengths (s) the bridge republishes on meters/<id>/agg/<interval>s",
        frozenset({BRIDGE}),
    ),
    Option(
        "FLEET_HA_DISCOVERY",
        "ha_discovery",
        parse_bool,
        True,
        "publish Home Assistant MQTT discovery: true or false",
        frozenset({BRIDGE}),
    ),
    Option(
        "FLEET_HA_PREFIX",
        "ha_prefix",
        parse_topic_prefix,
        DEFAULT_HA_PREFIX,
        "Home Assistant discovery prefix (the broker's topic rules let Home Assistant read under it)",
        frozenset({BROKER, BRIDGE}),
    ),
    Option(
        "FLEET_BRIDGE_ID",
        "bridge_id",
        parse_bridge_id,
        "",  # not set: derived at start (config.secret.bridge_settings)
        "MQTT client id of the bridge, bridge-...; one per bridge",
        frozenset({BRIDGE}),
        "derived from the secret",
    ),
    Option(
        "FLEET_SHARD",
        "shard",
        parse_shard,
        None,  # this bridge owns every meter (configured or heard)
        "k/n: this bridge owns the households of FLEET_HOUSEHOLDS with crc32(id) % n == k",
        frozenset({BRIDGE}),
        "none (all)",
    ),
    Option(
        "FLEET_CORS_ORIGINS",
        "cors_origins",
        parse_origins,
        (),
        "comma-separated origins allowed to call the HTTP API from a browser",
        frozenset({BRIDGE}),
    ),
    Option(
        "FLEET_MQTT_ANONYMOUS",
        "mqtt_anonymous",
        parse_bool,
        False,
        "true: the embedded broker lets anyone in and clients do not log in",
        _ALL,
    ),
    Option(
        "FLEET_MQTT_SECRET",
        "mqtt_secret",
        _text,
        "",  # empty: <data_dir>/mqtt-secret (config.secret.secret_path)
        "file of the secret all MQTT passwords derive from",
        _ALL,
        "FLEET_DATA_DIR/mqtt-secret",
    ),
    Option(
        "FLEET_MQTT_TLS_CA",
        "mqtt_tls_ca",
        _text,
        None,
        "CA certificate file clients trust; meters and bridge then connect with TLS",
        _CLIENTS,
        "none",
    ),
    Option(
        "FLEET_MQTT_TLS_CERT",
        "mqtt_tls_cert",
        _text,
        None,
        "certificate file (PEM) of the embedded broker: its listener speaks TLS (needs the key)",
        frozenset({BROKER}),
        "none",
    ),
    Option(
        "FLEET_MQTT_TLS_KEY",
        "mqtt_tls_key",
        _text,
        None,
        "private key file (PEM) of FLEET_MQTT_TLS_CERT",
        frozenset({BROKER}),
        "none",
    ),
)

# Every setting, with what it means (README lists the same table; a test checks it).
KNOWN_KEYS: Final[dict[str, str]] = {option.key: option.describe() for option in OPTIONS}


def options_for(program: str) -> tuple[Option, ...]:
    """The options ``program`` (broker, simulator or bridge) reads, in the table's order."""
    if program not in PROGRAMS:
        raise ValueError(f"unknown program {program!r} (known: {', '.join(PROGRAMS)})")
    return tuple(option for option in OPTIONS if program in option.readers)


def settings_help(program: str) -> str:
    """The ``FLEET_*`` settings ``program`` reads, one per line with its meaning and default: its ``--help`` epilog."""
    lines = [f"  {option.key}: {option.describe()}" for option in options_for(program)]
    return "settings (environment variables; command-line options override them):\n" + "\n".join(lines)


def load_settings(env: Mapping[str, str]) -> Settings:
    """Parse the ``FLEET_*`` variables of ``env`` (unknown ``FLEET_*`` keys are an error)."""
    unknown = sorted(key for key in env if key.startswith(PREFIX) and key not in KNOWN_KEYS)
    if unknown:
        raise ConfigError(unknown[0], f"unknown setting (known: {', '.join(KNOWN_KEYS)})")
    values: dict[str, Any] = {}
    for option in OPTIONS:
        raw = env.get(option.key)
        blank = raw is None or raw.strip() == ""
        values[option.field] = option.default if raw is None or blank else option.parse(raw, option.key)
    if values["broker"] is None:
        values["broker"] = BrokerAddress(values["mqtt_host"], values["mqtt_port"])
    tls_ca = values["mqtt_tls_ca"]
    if tls_ca:
        values["broker"] = values["broker"].each(lambda address: replace(address, tls=True, tls_ca=tls_ca))
    tls_cert, tls_key = values["mqtt_tls_cert"], values["mqtt_tls_key"]
    if (tls_cert is None) != (tls_key is None):
        given, missing = ("FLEET_MQTT_TLS_CERT", "FLEET_MQTT_TLS_KEY")[:: 1 if tls_key is None else -1]
        raise ConfigError(given, f"needs {missing} too (the broker's certificate and its key)")
    return Settings(**values)
