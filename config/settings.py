"""Settings: one prefixed set of environment variables (``FLEET_*``), parsed once into frozen dataclasses.

Each setting is declared once, in ``config.options.OPTIONS``: its key, the ``Settings`` field it fills, its parser,
default, meaning and the programs that read it (broker, simulator, bridge). ``KNOWN_KEYS``, ``load_settings``, each
program's help (``settings_help``) and the README's settings table (a test checks it) derive from that table. Every
``FLEET_*`` variable must be one of ``KNOWN_KEYS``; a typo is a ``ConfigError`` naming the key, not a silently ignored
setting. Command-line options of the entry points override these values (each ``__main__``'s ``with_options``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from zoneinfo import ZoneInfo

from config.brokers import (
    BrokerAddress,
    parse_broker_url,
    parse_broker_urls,
)
from config.errors import ConfigError
from config.option import BRIDGE, BROKER, PROGRAMS, SIMULATOR
from config.options import (
    DEFAULT_BRIDGE_ID,
    DEFAULT_CLIMATE,
    DEFAULT_GRACE_S,
    DEFAULT_HA_PREFIX,
    DEFAULT_HISTORY_S,
    DEFAULT_RETENTION_S,
    DEFAULT_WARMUP_S,
    KNOWN_KEYS,
    MAX_WARMUP_S,
    OPTIONS,
    PREFIX,
    options_for,
    settings_help,
)
from config.parsing import (
    CLIMATE_NAMES,
    parse_climate,
    parse_duration,
    parse_float_in,
    parse_int_in,
    parse_port,
    parse_speed,
    parse_time_of_day,
    parse_tz,
)
from config.shard import Shard
from config.topics import WHOLE_FLEET, bridge_status_topic

# What callers import from here: the settings, and (re-exported) those of the table, its constants, the parsers and the
# broker addresses (config.options, config.option, config.parsing, config.brokers) that callers take from here.
__all__ = [
    "BRIDGE",
    "BROKER",
    "CLIMATE_NAMES",
    "DEFAULT_BRIDGE_ID",
    "DEFAULT_CLIMATE",
    "DEFAULT_GRACE_S",
    "DEFAULT_HA_PREFIX",
    "DEFAULT_HISTORY_S",
    "DEFAULT_RETENTION_S",
    "DEFAULT_WARMUP_S",
    "KNOWN_KEYS",
    "MAX_WARMUP_S",
    "OPTIONS",
    "PREFIX",
    "PROGRAMS",
    "SIMULATOR",
    "BrokerAddress",
    "Settings",
    "load_settings",
    "options_for",
    "parse_broker_url",
    "parse_broker_urls",
    "parse_climate",
    "parse_duration",
    "parse_float_in",
    "parse_int_in",
    "parse_port",
    "parse_speed",
    "parse_time_of_day",
    "parse_tz",
    "settings_help",
]


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


def load_settings(env: Mapping[str, str]) -> Settings:
    """Parse the ``FLEET_*`` variables of ``env`` (unknown ``FLEET_*`` keys are an error)."""
    unknown = sorted(key for key in env if key.startswith(PREFIX) and key not in KNOWN_KEYS)
    if unknown:
        raise ConfigError(unknown[0], f"unknown setting (known: {', '.join(KNOWN_KEYS)})")
    values: dict[str, Any] = {}
    for option in OPTIONS:
        raw = env.get(option.key, "")
        values[option.field] = option.parse(raw, option.key) if raw.strip() else option.default  # blank: unset
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
