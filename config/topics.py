"""The MQTT topics of the fleet: who publishes what on which topic, with which QoS, and a meter's topic parsed (pure).

What the messages on these topics hold is ``config.wire``'s (so are ``Reading``, ``MAX_BATCH``, ``MAX_PAYLOAD_BYTES``
and ``MAX_REPLAY`` below).

Topics:
    meters/<meter_id>/reading   QoS 1, not retained, one-line UTF-8 JSON (``Reading``): the live reading of a second
    meters/<meter_id>/readings  QoS 1, not retained, a JSON array of 1..``MAX_BATCH`` readings of the meter, each the
                                same object as on ``reading``, the whole message at most ``MAX_PAYLOAD_BYTES``: how a
                                meter sends a backlog (after a reconnect or a restart, a warm-up, replay answers).
                                Consumers treat each element exactly like a message on ``reading``.
    meters/<meter_id>/status    QoS 1, retained, ``online`` on connect, ``offline`` as Last Will and on clean stop
    meters/<meter_id>/agg/<N>s  QoS 1, retained, published by the bridge: the meter's final N-second windows (JSON)
    meters/<meter_id>/cmd/replay  QoS 1, not retained, from the bridge: ``{"from_seq": a, "to_seq": b}`` asks the meter
                                to publish again its readings a..b (inclusive, at most ``MAX_REPLAY`` seqs) from its
                                outbox, as ordinary readings on its reading topic
    bridges/<client_id>/probe   QoS 1, not retained, a bridge to itself: any payload; that it comes back shows the
                                bridge's MQTT session is alive (bridge.ingest.health)
    bridges/<name>/status       QoS 1, retained, a bridge's availability: ``online`` after each connect, ``offline``
                                as Last Will and on clean stop. ``<name>`` is ``fleet`` for a bridge that owns every
                                meter, ``shard-<k>-of-<n>`` for shard k/n (``FLEET_SHARD``): never the client id,
                                which is secret (``config.credentials``). Home Assistant's entities of a meter need
                                both this and the meter's status (``bridge.republish.discovery``).
"""

from __future__ import annotations

import functools
import re
from typing import Final

from config.errors import PayloadError

METER_ID_PATTERN: Final = r"[A-Za-z0-9_-]{1,64}"
_METER_ID_RE: Final = re.compile(METER_ID_PATTERN)

TOPIC_ROOT: Final = "meters"
READING_SUBSCRIPTION: Final = "meters/+/reading"
BATCH_SUBSCRIPTION: Final = "meters/+/readings"
STATUS_SUBSCRIPTION: Final = "meters/+/status"
READING_QOS: Final = 1
STATUS_QOS: Final = 1
AGGREGATE_QOS: Final = 1
# A meter's subscription to its replay requests. QoS 0: meters use clean sessions, so QoS 1 would queue nothing while
# a meter is away and buys only a redelivery on the same connection, which the bridge's retries (every 5 s) give
# anyway; and on a NATS cluster every QoS 1 subscription is a replicated JetStream consumer, made on every connect of a
# clean session before the node reads anything more from that client (seconds per meter under a reconnect storm).
COMMAND_SUBSCRIBE_QOS: Final = 0


def valid_meter_id(meter_id: object) -> bool:
    """Whether ``meter_id`` is a string matching ``METER_ID_PATTERN``."""
    return isinstance(meter_id, str) and _valid_id_text(meter_id)


@functools.lru_cache(maxsize=65_536)  # every reading checks its meter's id: a fleet has few, each seen every second
def _valid_id_text(meter_id: str) -> bool:
    return _METER_ID_RE.fullmatch(meter_id) is not None


def reading_topic(meter_id: str) -> str:
    """Topic a meter publishes its readings on."""
    return f"{TOPIC_ROOT}/{meter_id}/reading"


def batch_topic(meter_id: str) -> str:
    """Topic a meter publishes batches of readings on (backlog, warm-up, replay answers)."""
    return f"{TOPIC_ROOT}/{meter_id}/readings"


def status_topic(meter_id: str) -> str:
    """Retained availability topic of a meter."""
    return f"{TOPIC_ROOT}/{meter_id}/status"


def replay_topic(meter_id: str) -> str:
    """Topic on which a meter takes replay requests."""
    return f"{TOPIC_ROOT}/{meter_id}/cmd/replay"


def aggregate_topic(meter_id: str, interval_s: int) -> str:
    """Retained topic on which the bridge republishes a meter's final ``interval_s``-second windows."""
    return f"{TOPIC_ROOT}/{meter_id}/agg/{interval_s}s"


BRIDGES_ROOT: Final = "bridges"
BRIDGE_STATUS_SUBSCRIPTION: Final = "bridges/+/status"  # every bridge's availability (and nothing else of theirs)
WHOLE_FLEET: Final = "fleet"  # the name of a bridge that owns every meter (no shard)


def bridge_status_topic(name: str) -> str:
    """Retained availability topic of the bridge called ``name`` (``WHOLE_FLEET``, or its shard's name)."""
    return f"{BRIDGES_ROOT}/{name}/status"


def probe_topic(client_id: str) -> str:
    """Topic on which a bridge publishes, and receives back, the liveness probe of its own MQTT session."""
    return f"{BRIDGES_ROOT}/{client_id}/probe"


def parse_topic(topic: str) -> tuple[str, str]:
    """Split ``meters/<id>/<kind>`` into ``(meter_id, kind)``; PayloadError('bad_topic') otherwise."""
    parsed = _split_topic(topic)
    if isinstance(parsed, str):
        raise PayloadError("bad_topic", parsed)
    return parsed


@functools.lru_cache(maxsize=16_384)  # every message's topic is parsed, and a fleet has few: one per meter and kind
def _split_topic(topic: str) -> tuple[str, str] | str:
    """``(meter_id, kind)``, or what is wrong with the topic."""
    parts = topic.split("/")
    if len(parts) != 3 or parts[0] != TOPIC_ROOT or parts[2] not in ("reading", "readings", "status"):
        return topic[:100]
    if not valid_meter_id(parts[1]):
        return f"bad meter id in {topic[:100]!r}"
    return parts[1], parts[2]
