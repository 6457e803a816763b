"""MQTT credentials and access rules of the fleet (pure: no file or network I/O).

One fleet secret (32 random bytes, see ``config.secret``) gives every client its password:
``base64url(HMAC-SHA256(secret, label))`` with label ``meter:<id>`` for a meter and the user name itself for the
service users (``bridge``, ``homeassistant``, ``observer``). Whoever holds the secret derives the same password, so a
fleet of thousands of meters needs no per-meter file, and a password says nothing about another.

Users and what they may do (the same rules for the embedded amqtt broker and for Mosquitto):

- ``<meter id>``: publish ``meters/<id>/+`` (reading, readings, status); subscribe ``meters/<id>/cmd/#``.
- ``bridge``: publish ``meters/+/agg/#``, ``meters/+/cmd/#``, ``<ha>/#`` and ``bridges/#`` (its availability,
  ``config.topics.bridge_status_topic``); subscribe ``meters/#``, ``<ha>/#`` and ``bridges/#`` (its session's liveness
  probe, ``config.topics.probe_topic``).
- ``homeassistant``: publish ``<ha>/status`` (its birth message); subscribe ``meters/+/agg/#``, ``meters/+/status``,
  ``bridges/+/status`` and ``<ha>/#``.
- ``observer`` (people with ``mosquitto_sub``): publish nothing; subscribe ``meters/#``, ``bridges/+/status``,
  ``<ha>/#`` and ``$SYS/#``.
- anonymous clients: refused (unless the broker is told to allow them: then no rules apply at all).

Client ids are bound to users (``client_id_refusal``), so that one login cannot take another client's session: a
meter connects only as ``meter-<its id>``, exactly; ``bridge-...`` ids belong to ``bridge`` (and the bridge uses no
other), ``homeassistant-...`` to ``homeassistant`` and ``observer-...`` to ``observer``; those two may also use any id
outside the reserved prefixes (Home Assistant's random default, ``mosquitto_sub``'s ``mosq-...``). The bridge's default
id is ``bridge-`` + 12 base32 characters of ``HMAC-SHA256(secret, "client-id:bridge")`` (``bridge_client_id``): nobody
without the secret can guess it.

``<ha>`` is the Home Assistant discovery prefix (``FLEET_HA_PREFIX``). A meter's one-level ``meters/<id>/+`` excludes
the two-level ``agg/<N>s`` and ``cmd/...`` topics, which only the bridge writes.

Renderings of the same users and rules: the JSON file of Mosquitto's dynamic security plugin (PBKDF2-SHA512, as
``mosquitto_ctrl dynsec`` writes it; Mosquitto 2.0's ``password_file``/``acl_file`` cannot bind a login to a client
id, the plugin can); amqtt's password file (argon2id, which amqtt 0.12's ``FileAuthPlugin`` verifies) and the
``publish-acl`` / ``acl`` maps of its ``TopicAccessControlListPlugin``; the ``users`` of a NATS server's
``authorization`` block (bcrypt, which nats-server verifies; topic filters as NATS subjects; see ``nats_users``). The
passwords are 256-bit random values, so the hashes need no key stretching: cheap parameters keep a broker's start and
each connection fast for large fleets.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import bcrypt

from config.errors import ConfigError
from config.topics import (
    BRIDGE_STATUS_SUBSCRIPTION,
    BRIDGES_ROOT,
    TOPIC_ROOT,
    aggregate_topic,
    replay_topic,
    status_topic,
    valid_meter_id,
)

SECRET_BYTES: Final = 32
BRIDGE_USER: Final = "bridge"
HOMEASSISTANT_USER: Final = "homeassistant"
OBSERVER_USER: Final = "observer"
SERVICE_USERS: Final = (BRIDGE_USER, HOMEASSISTANT_USER, OBSERVER_USER)

METER_CLIENT_PREFIX: Final = "meter-"
BRIDGE_CLIENT_PREFIX: Final = "bridge-"
# Client-id prefixes each reserved to one service user (``meter-`` ids belong to the meters, each only its own).
SERVICE_CLIENT_PREFIXES: Final = {
    BRIDGE_CLIENT_PREFIX: BRIDGE_USER,
    "homeassistant-": HOMEASSISTANT_USER,
    "observer-": OBSERVER_USER,
}
BRIDGE_ID_CHARS: Final = 12  # base32 characters after "bridge-": 60 bits, 19 characters in all (MQTT 3.1.1: <= 23)

# Mosquitto 2's PBKDF2-SHA512 as mosquitto_ctrl dynsec writes it (101 iterations, 12-byte salt).
MOSQUITTO_ITERATIONS: Final = 101
MOSQUITTO_SALT_BYTES: Final = 12
# argon2id at its cheapest sensible cost (64 KiB, one pass, about 0.1 ms): the secrets are random, not human.
ARGON2_MEMORY_KIB: Final = 64
ARGON2_TIME_COST: Final = 1
ARGON2_SALT_BYTES: Final = 16
ARGON2_HASH_BYTES: Final = 32
# bcrypt's cost for NATS (2^6 rounds, a few ms per connection; nats-server accepts $2a$/$2b$ hashes of any cost).
BCRYPT_COST: Final = 6
# The one internal subject family a permission-restricted MQTT client of nats-server 2.9 needs: the delivery subjects
# of the JetStream consumers behind its QoS 1 subscriptions (the server subscribes to them with the client's own
# permissions). Sessions, retained messages and QoS 1 publishes go through the server's internal clients and need
# nothing. That right cannot be used to read other sessions' deliveries: nats-server refuses MQTT filters under
# $MQTT/sub/ itself; the other internal subjects ($MQTT.msgs, .sess, .rmsgs) are outside every user's permissions.
NATS_MQTT_DELIVERY: Final = "$MQTT.sub.>"


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


def meter_client_id(meter_id: str) -> str:
    """The one client id meter ``meter_id`` may connect with: ``meter-<id>``."""
    return f"{METER_CLIENT_PREFIX}{meter_id}"


def bridge_client_id(secret: bytes) -> str:
    """The bridge's default client id: ``bridge-`` and 12 lower-case base32 characters of an HMAC of the secret."""
    if len(secret) < 16:
        raise ValueError("the fleet secret is too short")
    digest = hmac.new(secret, b"client-id:bridge", hashlib.sha256).digest()
    return BRIDGE_CLIENT_PREFIX + base64.b32encode(digest).decode("ascii")[:BRIDGE_ID_CHARS].lower()


def client_id_refusal(username: str | None, client_id: str | None) -> str | None:
    """Why ``username`` may not connect with ``client_id`` (None: it may). Meters (any user that is not a service
    user) only as ``meter-<id>``; the bridge only with a ``bridge-`` id; the other service users with their own
    prefix or with an id outside every reserved prefix."""
    if not username:
        return "no user name"
    cid = client_id or ""
    if username not in SERVICE_USERS:
        own = meter_client_id(username)
        return None if cid == own else f"meter {username!r} connects only as {own!r}, not {cid!r}"
    if cid.startswith(METER_CLIENT_PREFIX):
        return f"{cid!r}: {METER_CLIENT_PREFIX}... ids belong to the meters"
    for prefix, owner in SERVICE_CLIENT_PREFIXES.items():
        if cid.startswith(prefix) and owner != username:
            return f"{cid!r}: {prefix}... ids belong to {owner}"
    if username == BRIDGE_USER and not cid.startswith(BRIDGE_CLIENT_PREFIX):
        return f"the bridge connects only with a {BRIDGE_CLIENT_PREFIX}... id, not {cid!r}"
    return None


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
    # Each bridge's liveness probe, to itself (config.topics.probe_topic), and its availability.
    bridges = f"{BRIDGES_ROOT}/#"
    # Only the bridges' availability: the probe topics name the bridges' client ids, which are secret.
    bridge_status = BRIDGE_STATUS_SUBSCRIPTION
    return {
        BRIDGE_USER: ((aggregates, commands, discovery, bridges), (every_meter, discovery, bridges)),
        # Home Assistant publishes its birth message on <prefix>/status (bridge.republish.discovery.ha_status_topic).
        HOMEASSISTANT_USER: ((f"{ha_prefix}/status",), (aggregates, status_topic("+"), bridge_status, discovery)),
        OBSERVER_USER: ((), (every_meter, bridge_status, discovery, "$SYS/#")),
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
    """Base64 of PBKDF2-SHA512(password, salt, iterations): the ``password`` of a dynamic-security client."""
    return base64.b64encode(hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)).decode()


def mosquitto_dynsec_config(rules: Sequence[Rule], salts: Sequence[bytes]) -> dict[str, Any]:
    """The configuration of Mosquitto's dynamic security plugin (its JSON file): one client per rule (PBKDF2-SHA512
    as ``mosquitto_ctrl dynsec`` writes it; ``salts``: one random salt per rule) with a role of the same name carrying
    its topics; every meter bound to its client id ``meter-<id>``. Service users stay unbound (the plugin binds only
    exact ids). Nothing is allowed by default, and there is no admin: nobody may change it over ``$CONTROL``."""
    clients: list[dict[str, Any]] = []
    roles: list[dict[str, Any]] = []
    for rule, salt in zip(rules, salts, strict=True):
        client: dict[str, Any] = {
            "username": rule.username,
            "password": mosquitto_hash(rule.password, salt),
            "salt": base64.b64encode(salt).decode(),
            "iterations": MOSQUITTO_ITERATIONS,
            "roles": [{"rolename": rule.username}],
        }
        if rule.username not in SERVICE_USERS:
            client["clientid"] = meter_client_id(rule.username)
        clients.append(client)
        acls = [{"acltype": "publishClientSend", "topic": topic, "allow": True} for topic in rule.publish]
        for topic in rule.subscribe:
            acls.append({"acltype": "subscribePattern", "topic": topic, "allow": True})
            acls.append({"acltype": "publishClientReceive", "topic": topic, "allow": True})
        roles.append({"rolename": rule.username, "acls": acls})
    # Nothing by default: a client sends, receives and subscribes only what its role allows.
    denied = {"publishClientSend": False, "publishClientReceive": False, "subscribe": False, "unsubscribe": True}
    return {"clients": clients, "roles": roles, "groups": [], "defaultACLAccess": denied}


# --- amqtt ----------------------------------------------------------------------------------------------------


def amqtt_hash(password: str, salt: bytes) -> str:
    """An argon2id PHC string (``$argon2id$v=19$m=64,t=1,p=1$...``) that amqtt's FileAuthPlugin verifies."""
    from argon2.low_level import Type, hash_secret  # the embedded extra: only the amqtt broker needs argon2

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


# --- NATS -----------------------------------------------------------------------------------------------------


def nats_subjects(topic_filter: str) -> tuple[str, ...]:
    """The NATS subjects an MQTT topic filter covers, as nats-server's MQTT gateway maps them: ``/`` -> ``.``,
    ``+`` -> ``*``, ``#`` -> ``>``; ``a/#`` also matches ``a`` itself in MQTT, so it gives ``a.>`` and ``a``.
    ValueError for a filter NATS cannot express the same way (a ``.``, space or empty level; a wildcard inside a
    level; ``#`` not last)."""
    levels = topic_filter.split("/")
    for index, level in enumerate(levels):
        if not level or "." in level or " " in level:
            raise ValueError(f"topic filter {topic_filter!r}: NATS subjects cannot hold the level {level!r}")
        if ("+" in level or "#" in level) and len(level) > 1:
            raise ValueError(f"topic filter {topic_filter!r}: a wildcard must be a whole level")
        if level == "#" and index != len(levels) - 1:
            raise ValueError(f"topic filter {topic_filter!r}: '#' must be the last level")
    subject = ".".join({"+": "*", "#": ">"}.get(level, level) for level in levels)
    if len(levels) > 1 and levels[-1] == "#":
        return subject, subject[: -len(".>")]
    return (subject,)


def nats_hash(password: str, salt: bytes) -> str:
    """A bcrypt hash (``$2b$06$...``) of ``password`` that nats-server verifies; ``salt`` from ``bcrypt.gensalt``."""
    return bcrypt.hashpw(password.encode(), salt).decode("ascii")


def nats_users(rules: Sequence[Rule], salts: Sequence[bytes]) -> list[dict[str, Any]]:
    """The ``users`` of a NATS ``authorization`` block: one per rule (bcrypt, ``salts``: one ``bcrypt.gensalt`` each),
    MQTT connections only, its filters as subjects: publish only those (a user without any: nothing), subscribe those
    and the MQTT delivery subjects (``NATS_MQTT_DELIVERY``). NATS cannot bind a client id to a user: see
    docs/scaling.md."""
    users: list[dict[str, Any]] = []
    for rule, salt in zip(rules, salts, strict=True):
        publish = [subject for topic in rule.publish for subject in nats_subjects(topic)]
        subscribe = [subject for topic in rule.subscribe for subject in nats_subjects(topic)]
        users.append(
            {
                "user": rule.username,
                "password": nats_hash(rule.password, salt),
                "allowed_connection_types": ["MQTT"],
                "permissions": {
                    "publish": {"allow": publish} if publish else {"deny": [">"]},
                    "subscribe": {"allow": [*subscribe, NATS_MQTT_DELIVERY]},
                },
            }
        )
    return users
