"""The body schemas of the bridge's OpenAPI document (``bridge.http.openapi``), written by hand as data.

``SCHEMAS`` is the document's ``components/schemas``: every request and response body as JSON Schema; ``ref`` points
at a component.

The limits, the setup's answer and the whole-number pattern come from ``bridge.http.validation``, the channels from
``bridge.windows.aggregate``, the meter-id pattern from ``config.topics`` and the timestamp pattern from
``config.wire``, so that a schema cannot drift from what is enforced.
"""

from __future__ import annotations

from typing import Any, Final

from bridge.http.validation import INT_TEXT, MAX_INTERVAL_S, MAX_START_INDEX, SETUP_OK
from bridge.windows.aggregate import CHANNELS
from config.topics import METER_ID_PATTERN
from config.wire import TS_PATTERN

JSON: Final = "application/json"
TIMESTAMP: Final = {"type": "string", "pattern": f"^{TS_PATTERN}$"}  # config.wire's timestamp, anchored
INT_TEXT_ANCHORED: Final = f"^{INT_TEXT}$"  # bridge.http.validation's whole number, anchored (JSON Schema's is not)

JsonObject = dict[str, Any]


def ref(kind: str, name: str) -> JsonObject:
    """A reference to ``name`` among the document's ``components/<kind>``."""
    return {"$ref": f"#/components/{kind}/{name}"}


def _object(properties: JsonObject, required: tuple[str, ...] | None = None) -> JsonObject:
    """A closed object: every key is documented, all required unless told."""
    names = tuple(properties) if required is None else required
    return {"type": "object", "required": list(names), "properties": properties, "additionalProperties": False}


def _health(status: str) -> JsonObject:
    """/healthz's body: ``ok``, or ``degraded`` with the reasons (and ``error``, as every error status has)."""
    properties: JsonObject = {
        "status": {"const": status},
        "mqtt": {"enum": ["connected", "stalled", "disconnected"]},
        "meters": {
            "type": "object",
            "additionalProperties": _object(
                {
                    "status": {"type": "string"},
                    "last_seq": {"type": ["integer", "null"]},
                    "last_reading": {"anyOf": [TIMESTAMP, {"type": "null"}]},
                    "received": {"type": "integer", "minimum": 0},
                    "duplicates": {"type": "integer", "minimum": 0},
                }
            ),
        },
        "messages": _object(
            {
                "accepted": {"type": "integer", "minimum": 0},
                "duplicates": {"type": "integer", "minimum": 0},
                "rejected": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 1}},
            }
        ),
        "streams": {"type": "integer", "minimum": 0},
        "last_message_age_s": {"type": ["number", "null"], "minimum": 0},
        # The broker the bridge is on (or tries next, while disconnected), without a password; null without MQTT.
        "broker": {"type": ["string", "null"]},
    }
    if status == "degraded":
        properties["reason"] = {"type": "array", "minItems": 1, "items": {"type": "string"}}
        properties["error"] = {"type": "string", "minLength": 1}
    return _object(properties)


def _per_channel(value: JsonObject) -> JsonObject:
    return _object({name: value for name in CHANNELS})


def _stats_properties() -> JsonObject:
    number = {"type": "number"}
    return {
        "25p": _per_channel(number),
        "75p": _per_channel(number),
        "median": _per_channel(number),
        "rt_critical_value_0.01": _per_channel(number),
        "best_distribution": _per_channel({"enum": ["norm", "expon"]}),
        "samples": {"type": "integer", "minimum": 0, "description": "seconds of history behind the statistics"},
        "window_count": {"type": "integer", "minimum": 0},
        "warming_up": {"type": "boolean", "description": "fewer than 12 windows: only missing values are Red"},
    }


SCHEMAS: Final[JsonObject] = {
    "Error": {
        **_object({"error": {"type": "string", "minLength": 1}}),
        "description": "Every error, whatever the status: never HTML.",
    },
    "WarmingUp": _object(
        {
            "error": {"type": "string", "minLength": 1},
            "warming_up": {"const": True},
            "household": {"type": "string"},
            "interval": {"type": "integer", "minimum": 1},
        }
    ),
    "SetupRequest": {
        "type": "object",
        "required": ["household", "interval"],
        "properties": {
            "household": {
                "type": "string",
                "pattern": f"^{METER_ID_PATTERN}$",
                "description": "a known household, case-insensitive",
            },
            "interval": {
                "type": ["integer", "string"],
                "minimum": 1,
                "maximum": MAX_INTERVAL_S,
                "pattern": INT_TEXT_ANCHORED,
                "description": "whole seconds; 5, 5.0 and '5' are accepted, 2.7 is refused",
            },
            "start_index": {
                "type": ["integer", "string", "null"],
                "minimum": 0,
                "maximum": MAX_START_INDEX,
                "pattern": f"{INT_TEXT_ANCHORED}|^$",
                "description": "simulated seconds since midnight to replay from; absent, null or empty: live",
            },
            "pace": {
                "enum": ["interval", "none", "", None],
                "description": "replay one event per interval (default: absent, null or empty) or at once",
            },
            "by": {
                "enum": ["day", "hour", "", None],
                "description": "colours against one baseline (default: absent, null or empty) or per hour of day",
            },
        },
    },
    "Setup": _object(
        {
            "status": {"const": SETUP_OK},
            "stream_id": {"type": "string", "minLength": 16},
            "household": {"type": "string", "pattern": f"^{METER_ID_PATTERN}$"},
            "interval": {"type": "integer", "minimum": 1, "maximum": MAX_INTERVAL_S},
            "start_index": {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_START_INDEX},
            "pace": {"enum": ["interval", "none"]},
            "by": {"enum": ["day", "hour"]},
            "stream_url": {"type": "string", "pattern": r"^/stream_data\?stream="},
        }
    ),
    "StatsDocument": _object(_stats_properties()),
    "QuickStats": _object(
        {
            **_stats_properties(),
            "household": {"type": "string"},
            "interval": {"type": "integer", "minimum": 1},
            "from": TIMESTAMP,
            "to": TIMESTAMP,
            "hourly": {
                "type": "object",
                "description": "with by=hour: the baseline of each local hour of day",
                "propertyNames": {"pattern": "^[0-2][0-9]$"},
                "additionalProperties": ref("schemas", "StatsDocument"),
            },
        },
        required=(*_stats_properties(), "household", "interval", "from", "to"),
    ),
    "Colour": {"enum": ["Green", "Yellow", "Red"]},
    "Window": _object(
        {
            "household": {"type": "string"},
            "interval": {"type": "integer", "minimum": 1},
            "window_start": TIMESTAMP,
            "window_end": TIMESTAMP,
            **{name: {"type": ["number", "null"], "description": "mean kW over the window"} for name in CHANNELS},
            "samples": {"type": "integer", "minimum": 0, "description": "seconds of the window received"},
            "status": _per_channel(ref("schemas", "Colour")),
            "level": ref("schemas", "Colour"),
        }
    ),
    "LegacyWindow": {
        "type": "string",
        "pattern": r"^\{.*\} status: \{.*\}$",
        "description": 'format=legacy: {"AC": 1.5, "Geyser": 0.0, "Overall": 2.734} status: {"AC": "Green", ...}',
    },
    "Reset": _object({"reason": {"type": "string"}, "skipped_from": TIMESTAMP, "resume_from": TIMESTAMP}),
    "Event": {
        "description": "One Server-Sent Event as a client parses it (comments and the first retry: are not events).",
        "oneOf": [
            {
                "type": "object",
                "required": ["data", "event", "id"],
                "properties": {
                    "event": {"const": "message"},
                    "id": {"type": "string", "pattern": "^[0-9]+$", "description": "window end, epoch seconds"},
                    "data": {
                        "anyOf": [
                            {"type": "string", "contentMediaType": JSON, "contentSchema": ref("schemas", "Window")},
                            ref("schemas", "LegacyWindow"),
                        ]
                    },
                },
            },
            {
                "type": "object",
                "required": ["data", "event"],
                "description": "A window already sent, corrected by readings that arrived late (gap repair, a meter's"
                " backlog): the same JSON as its window event, recomputed, and no id (Last-Event-ID is unaffected)."
                " Once per corrected window and pass; never on format=legacy streams.",
                "properties": {
                    "event": {"const": "revision"},
                    "data": {"type": "string", "contentMediaType": JSON, "contentSchema": ref("schemas", "Window")},
                },
                "not": {"required": ["id"]},
            },
            {
                "type": "object",
                "required": ["data", "event"],
                "properties": {
                    "event": {"const": "reset"},
                    "data": {"type": "string", "contentMediaType": JSON, "contentSchema": ref("schemas", "Reset")},
                },
            },
        ],
    },
    "Health": _health("ok"),
    "HealthDegraded": _health("degraded"),
    "Meters": _object(
        {
            "meters": {
                "type": "object",
                "additionalProperties": _object(
                    {
                        "status": {"enum": ["online", "offline", "unknown"]},
                        "last_seq": {"type": ["integer", "null"]},
                        "last_reading": {"anyOf": [TIMESTAMP, {"type": "null"}]},
                        "received": {"type": "integer", "minimum": 0},
                        "duplicates": {"type": "integer", "minimum": 0},
                        "gaps_open": {"type": "integer", "minimum": 0},
                        "gaps_repaired": {"type": "integer", "minimum": 0},
                        "seq_restarts": {"type": "integer", "minimum": 0},
                        "replay_requested": {"type": "integer", "minimum": 0},
                        "rejected": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 1}},
                    }
                ),
            }
        }
    ),
    "DashboardHouseholds": _object(
        {
            "households": {
                "type": "array",
                "items": _object(
                    {
                        "household": {"type": "string"},
                        "description": {"type": ["string", "null"]},
                        "status": {"type": "string"},
                        "now": {"anyOf": [TIMESTAMP, {"type": "null"}]},
                        "now_s": {"type": ["integer", "null"]},
                        "start_index": {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_START_INDEX},
                    }
                ),
            },
            "tz": {"type": "string"},
            "grace_s": {"type": "integer", "minimum": 0},
            "span_s": {"type": "integer", "minimum": 1},
            "interval_presets": {"type": "array", "items": {"type": "integer", "minimum": 1}},
            "max_panels": {"type": "integer", "minimum": 1},
        }
    ),
    "Options": _object({"allow": {"type": "array", "items": {"type": "string"}, "description": "as the Allow header"}}),
    "Index": _object(
        {
            "service": {"type": "string"},
            "endpoints": {"type": "object", "additionalProperties": {"type": "string"}},
            "households": {"type": "array", "items": {"type": "string"}},
        }
    ),
}
