"""Parsers of setting values: text in, a checked value out, or a ``ConfigError`` naming the key (pure, but for
``parse_tz``, which reads the time zone database through ``ZoneInfo``).

Each takes the text and the key (a ``FLEET_*`` variable or a command-line option) it came from, so an error names
what the user wrote, whichever of the two it was.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Final
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from config.errors import ConfigError
from config.topics import valid_meter_id

# The keys of config.realistic.CLIMATES (a test checks they agree): parsing a setting need not build the realistic
# profile's parameters (a dozen dataclasses, ~15 ms of import) that a classic run never uses.
CLIMATE_NAMES: Final = ("new-delhi", "phoenix", "brisbane")
# The keys of simulator.profiles.factory.PROFILES, sorted (a test checks they agree), for the same reason.
PROFILE_NAMES: Final = ("classic", "realistic")

_HMS_RE: Final = re.compile(r"([0-9]{1,2}):([0-9]{2}):([0-9]{2})")


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


def parse_profile(text: str, key: str = "FLEET_PROFILE", known: Collection[str] = PROFILE_NAMES) -> str:
    """A meter profile's name, one of ``known`` (the simulator passes its own registry, which tests extend)."""
    name = text.strip().lower()
    if name not in known:
        raise ConfigError(key, f"unknown profile {name!r} (known: {', '.join(sorted(known))})")
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
