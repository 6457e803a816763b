"""The table of settings: each ``FLEET_*`` variable declared once (``OPTIONS``), with its ``Settings`` field, parser,
default, meaning and the programs that read it (broker, simulator, bridge).

``KNOWN_KEYS``, ``config.settings.load_settings``, each program's ``--help`` (``settings_help``) and the README's
settings table (a test checks its keys, readers and defaults) derive from it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from config import parsing
from config.brokers import DEFAULT_MQTT_PORT, parse_broker_urls
from config.errors import ConfigError
from config.option import BRIDGE, BROKER, PROGRAMS, SIMULATOR, Option
from config.shard import parse_shard

PREFIX: Final = "FLEET_"

DEFAULT_MQTT_HOST: Final = "127.0.0.1"
DEFAULT_HTTP_HOST: Final = "127.0.0.1"
DEFAULT_HTTP_PORT: Final = 5000
DEFAULT_SPEED: Final = 1.0
DEFAULT_PROFILE: Final = "realistic"
DEFAULT_CLIMATE: Final = "new-delhi"
DEFAULT_TZ: Final = "UTC"
DEFAULT_HOUSEHOLDS: Final = ("A", "B", "C")
DEFAULT_GRACE_S: Final = 0  # late readings are corrected by SSE `event: revision` (bridge.windows.streams)
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

# --- The table ------------------------------------------------------------------------------------------------------

_CLIENTS: Final = frozenset({SIMULATOR, BRIDGE})  # the MQTT clients: they connect where FLEET_BROKER says
_ALL: Final = frozenset(PROGRAMS)


def _text(text: str, key: str) -> str:
    return text.strip()


def _log_level(text: str, key: str) -> str:
    level = text.strip().upper()
    if level not in LOG_LEVELS:
        raise ConfigError(key, f"unknown level {level!r}")
    return level


def _store(text: str, key: str) -> str:
    value = text.strip().lower()
    if value not in STORES:
        raise ConfigError(key, f"must be one of {', '.join(STORES)}, got {text!r}")
    return value


def _int_in(low: int, high: int) -> Callable[[str, str], int]:
    return lambda text, key: parsing.parse_int_in(text, key, low, high)


def _float_in(low: float, high: float) -> Callable[[str, str], float]:
    return lambda text, key: parsing.parse_float_in(text, key, low, high)


def _warmup(text: str, key: str) -> int:
    return parsing.parse_duration(text, key, MAX_WARMUP_S)


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
    Option("FLEET_MQTT_PORT", "mqtt_port", parsing.parse_port, DEFAULT_MQTT_PORT, "broker port", _ALL),
    Option("FLEET_HTTP_HOST", "http_host", _text, DEFAULT_HTTP_HOST, "bridge HTTP bind address", frozenset({BRIDGE})),
    Option(
        "FLEET_HTTP_PORT", "http_port", parsing.parse_port, DEFAULT_HTTP_PORT, "bridge HTTP port", frozenset({BRIDGE})
    ),
    Option(
        "FLEET_SPEED",
        "speed",
        parsing.parse_speed,
        DEFAULT_SPEED,
        "simulation speed, simulated seconds per wall second",
        _CLIENTS,  # the bridge paces replays and judges the meters' health by it
    ),
    Option(
        "FLEET_START",
        "start_s",
        parsing.parse_time_of_day,
        None,
        "simulated time of day to start at, HH:MM:SS",
        frozenset({SIMULATOR}),
        "now",
    ),
    Option(
        "FLEET_PROFILE",
        "profile",
        parsing.parse_profile,
        DEFAULT_PROFILE,
        "meter profile: realistic or classic (the original schedules, exactly)",
        frozenset({SIMULATOR}),
    ),
    Option(
        "FLEET_CLIMATE",
        "climate",
        parsing.parse_climate,
        DEFAULT_CLIMATE,
        "climate of the realistic profile: new-delhi, phoenix or brisbane",
        frozenset({SIMULATOR}),
    ),
    Option(
        "FLEET_TZ",
        "tz",
        parsing.parse_tz,
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
        parsing.parse_households,
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
        _float_in(0.0, 100_000.0),
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
        parsing.parse_intervals,
        DEFAULT_AGG_INTERVALS,
        "window lengths (s) the bridge republishes on meters/<id>/agg/<interval>s",
        frozenset({BRIDGE}),
    ),
    Option(
        "FLEET_HA_DISCOVERY",
        "ha_discovery",
        parsing.parse_bool,
        True,
        "publish Home Assistant MQTT discovery: true or false",
        frozenset({BRIDGE}),
    ),
    Option(
        "FLEET_HA_PREFIX",
        "ha_prefix",
        parsing.parse_topic_prefix,
        DEFAULT_HA_PREFIX,
        "Home Assistant discovery prefix (the broker's topic rules let Home Assistant read under it)",
        frozenset({BROKER, BRIDGE}),
    ),
    Option(
        "FLEET_BRIDGE_ID",
        "bridge_id",
        parsing.parse_bridge_id,
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
        parsing.parse_origins,
        (),
        "comma-separated origins allowed to call the HTTP API from a browser",
        frozenset({BRIDGE}),
    ),
    Option(
        "FLEET_MQTT_ANONYMOUS",
        "mqtt_anonymous",
        parsing.parse_bool,
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
