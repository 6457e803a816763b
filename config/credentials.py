"""MQTT credentials and access rules of the fleet (pure: no file or network I/O).

One fleet secret (32 random bytes, see ``config.secret``) gives every client its password:
``base64url(HMAC-SHA256(secret, label))`` with label ``meter:<id>`` for a meter and the user name itself for the
service users (``bridge``, ``homeassistant``, ``observer``). Whoever holds the secret derives the same password, so a
fleet of thousands of meters needs no per-meter file, and a password says nothing about another.

Users and what they may do (the same rules for the embedded amqtt broker and for Mosquitto):

- ``<meter id>``: publish ``meters/<id>/+`` (reading, readings, status); subscribe ``meters/<id>/cmd/#``.
- ``bridge``: publish ``meters/+/agg/#``, ``meters/+/cmd/#``, ``<ha>/#`` and ``bridges/#``; subscribe ``meters/#``,
  ``<ha>/#`` and ``bridges/#`` (its session's liveness probe, ``config.wire.probe_topic``).
- ``homeassistant``: publish ``<ha>/status`` (its birth message); subscribe ``meters/+/agg/#``, ``meters/+/status``
  and ``<ha>/#``.
- ``observer`` (people with ``mosquitto_sub``): publish nothing; subscribe ``meters/#``, ``<ha>/#`` and ``$SYS/#``.
- anonymous clients: refused (unless the broker is told to allow them: then no rules apply at all).

``<ha>`` is the Home Assistant discovery prefix (``FLEET_HA_PREFIX``). A meter's one-level ``meters/<id>/+`` excludes
the two-level ``agg/<N>s`` and ``cmd/...`` topics, which only the bridge writes.

Renderings of the same users and rules: Mosquitto's ``password_file`` (``$7$``: PBKDF2-SHA512, as ``mosquitto_passwd``
writes it) and ``acl_file``; amqtt's password file (argon2id, which amqtt 0.12's ``FileAuthPlugin`` verifies) and the
``publish-acl`` / ``acl`` maps of its ``TopicAccessControlListPlugin``. The passwords are 256-bit random values, so
the hashes need no key stretching: cheap parameters keep a broker's start and each connection fast for large fleets.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from argon2.low_level import Type, hash_secret

from config.errors import ConfigError
from config.wire import BRIDGES_ROOT, TOPIC_ROOT, aggregate_topic, replay_topic, status_topic, valid_meter_id

SECRET_BYTES: Final = 32
BRIDGE_USER: Final = "bridge"
HOMEASSISTANT_USER: Final = "homeassistant"
OBSERVER_USER: Final = "observer"
SERVICE_USERS: Final = (BRIDGE_USER, HOMEASSISTANT_USER, OBSERVER_USER)

# Mosquitto 2's $7$ hash: what mosquitto_passwd writes (101 PBKDF2-SHA512 iterations, 12-byte salt).
MOSQUITTO_ITERATIONS: Final = 101
MOSQUITTO_SALT_BYTES: Final = 12
# argon2id at its cheapest sensible cost (64 KiB, one pass, about 0.1 ms): the secrets are random, not human.
ARGON2_MEMORY_KIB: Final = 64
ARGON2_TIME_COST: Final = 1
ARGON2_SALT_BYTES: Final = 16
ARGON2_HASH_BYTES: Final = 32


@dataclass(frozen=True, slots=True)
class Rule:
    """What one user may do: topic filters it may publish to, and filters it may subscribe to (and receive)."""

    username: str
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    password: str = field(repr=False)


def check_meter_ids(meter_ids: Iterable[str], key: str = "FLEET_HOUSEHOLDS") -> tuple[str, ...]:
    """The ids as a tuple, without repeats; ConfigError for an invalid id or one that is a service user name."""
    ids = tuple(dict.fromkeys(meter_ids))
    for meter_id in ids:
        if not valid_meter_id(meter_id):
            raise ConfigError(key, f"bad meter id {meter_id!r}")
        if meter_id in SERVICE_USERS:
            raise ConfigError(key, f"meter id {meter_id!r} is the name of a service user ({', '.join(SERVICE_USERS)})")
    return ids


def _derive(secret: bytes, label: str) -> str:
    if len(secret) < 16:
        raise ValueError("the fleet secret is too short")
    digest = hmac.new(secret, label.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def meter_password(secret: bytes, meter_id: str) -> str:
    """The password of meter ``meter_id``."""
    return _derive(secret, f"meter:{meter_id}")


def password_for(secret: bytes, username: str) -> str:
    """The password of ``username``: a service user's, otherwise the meter's of that id."""
    if username in SERVICE_USERS:
        return _derive(secret, username)
    return meter_password(secret, username)


def _parent(topic: str) -> str:
    return topic.rsplit("/", 1)[0]


def meter_rule(meter_id: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(publish, subscribe) filters of one meter: its own one-level topics, and its own command topics."""
    own = _parent(status_topic(meter_id))  # meters/<id>
    return (f"{own}/+",), (f"{_parent(replay_topic(meter_id))}/#",)


def service_rules(ha_prefix: str) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """(publish, subscribe) filters of each service user."""
    every_meter = f"{TOPIC_ROOT}/#"
    aggregates = f"{_parent(aggregate_topic('+', 1))}/#"  # meters/+/agg/#
    commands = f"{_parent(replay_topic('+'))}/#"  # meters/+/cmd/#
    discovery = f"{ha_prefix}/#"
    probes = f"{BRIDGES_ROOT}/#"  # each bridge's liveness probe, to itself (config.wire.probe_topic)
    return {
        BRIDGE_USER: ((aggregates, commands, discovery, probes), (every_meter, discovery, probes)),
        # Home Assistant publishes its birth message on <prefix>/status (bridge.discovery.ha_status_topic).
        HOMEASSISTANT_USER: ((f"{ha_prefix}/status",), (aggregates, status_topic("+"), discovery)),
        OBSERVER_USER: ((), (every_meter, discovery, "$SYS/#")),
    }


def fleet_rules(secret: bytes, meter_ids: Sequence[str], ha_prefix: str) -> list[Rule]:
    """Every user of the fleet (the service users, then the meters), with its password and its topics."""
    rules = [
        Rule(name, publish, subscribe, password_for(secret, name))
        for name, (publish, subscribe) in service_rules(ha_prefix).items()
    ]
    for meter_id in check_meter_ids(meter_ids):
        publish, subscribe = meter_rule(meter_id)
        rules.append(Rule(meter_id, publish, subscribe, meter_password(secret, meter_id)))
    return rules


# --- Mosquitto ------------------------------------------------------------------------------------------------


def mosquitto_hash(password: str, salt: bytes, iterations: int = MOSQUITTO_ITERATIONS) -> str:
    """``$7$<iterations>$<b64 salt>$<b64 PBKDF2-SHA512>``, Mosquitto 2's password-file hash."""
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def mosquitto_password_file(rules: Sequence[Rule], salts: Sequence[bytes]) -> str:
    """Mosquitto's ``password_file``: one ``user:hash`` line per rule (``salts``: one random salt per rule)."""
    return "".join(
        f"{rule.username}:{mosquitto_hash(rule.password, salt)}\n" for rule, salt in zip(rules, salts, strict=True)
    )


def mosquitto_acl_file(rules: Sequence[Rule]) -> str:
    """Mosquitto's ``acl_file``: a ``user`` block per rule; nothing for anonymous clients, so they get nothing."""
    lines = ["# Generated by `python -m broker mosquitto-auth` (config/credentials.py); do not edit.", ""]
    for rule in rules:
        lines.append(f"user {rule.username}")
        both = set(rule.publish) & set(rule.subscribe)
        for topic in rule.publish:
            lines.append(f"topic {'readwrite' if topic in both else 'write'} {topic}")
        lines += [f"topic read {topic}" for topic in rule.subscribe if topic not in both]
        lines.append("")
    return "\n".join(lines)


# --- amqtt ----------------------------------------------------------------------------------------------------


def amqtt_hash(password: str, salt: bytes) -> str:
    """An argon2id PHC string (``$argon2id$v=19$m=64,t=1,p=1$...``) that amqtt's FileAuthPlugin verifies."""
    encoded = hash_secret(
        password.encode(),
        salt,
        time_cost=ARGON2_TIME_COST,
        memory_cost=ARGON2_MEMORY_KIB,
        parallelism=1,
        hash_len=ARGON2_HASH_BYTES,
        type=Type.ID,
    )
    return encoded.decode("ascii")


def amqtt_password_file(rules: Sequence[Rule], salts: Sequence[bytes]) -> str:
    """amqtt's password file: one ``user:hash`` line per rule (``salts``: one random salt per rule)."""
    return "".join(
        f"{rule.username}:{amqtt_hash(rule.password, salt)}\n" for rule, salt in zip(rules, salts, strict=True)
    )


def amqtt_acls(rules: Sequence[Rule]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(``publish-acl``, ``acl``) of amqtt's topic ACL plugin: user -> filters. A user without publish filters gets
    none (amqtt then refuses every publish of that user)."""
    return (
        {rule.username: list(rule.publish) for rule in rules},
        {rule.username: list(rule.subscribe) for rule in rules},
    )
