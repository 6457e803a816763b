"""The bridge's OpenAPI 3.1 document, written by hand as data, and ``GET /openapi.json`` serving it.

Static on purpose: the document is what we promise, not what the code happens to do, and the tests hold the two
together (``tests/unit/bridge/http/test_openapi.py``: every route in the app's ``url_map`` is documented and nothing
else is; ``tests/integration/test_schemathesis.py``: a live bridge answers every generated request as documented).

The event stream follows the convention of OpenAPI before 3.2 that schemathesis reads: the ``text/event-stream``
``schema`` describes one event as an SSE client parses it (``data``, ``event``, ``id``), and ``contentSchema`` the JSON
inside ``data``.
"""

from __future__ import annotations

from typing import Any, Final

from flask import Blueprint, Response, jsonify

from bridge.http.ratelimit import DEFAULT_BURST, DEFAULT_RATE_PER_S
from bridge.http.validation import INT_TEXT as WHOLE_NUMBER
from bridge.http.validation import MAX_BODY_BYTES, MAX_INTERVAL_S, MAX_START_INDEX, SETUP_OK
from bridge.windows.aggregate import CHANNELS
from config.wire import METER_ID_PATTERN

JSON: Final = "application/json"
TIMESTAMP: Final = {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"}
INT_TEXT: Final = f"^{WHOLE_NUMBER}$"  # bridge.http.validation's whole number, anchored (JSON Schema's pattern is not)

JsonObject = dict[str, Any]


def _ref(kind: str, name: str) -> JsonObject:
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


def _json(schema: JsonObject, description: str, **extra: Any) -> JsonObject:
    return {"description": description, "content": {JSON: {"schema": schema}}, **extra}


def _error(description: str, **extra: Any) -> JsonObject:
    return _json(_ref("schemas", "Error"), description, **extra)


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
                "pattern": INT_TEXT,
                "description": "whole seconds; 5, 5.0 and '5' are accepted, 2.7 is refused",
            },
            "start_index": {
                "type": ["integer", "string", "null"],
                "minimum": 0,
                "maximum": MAX_START_INDEX,
                "pattern": f"{INT_TEXT}|^$",
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
                "additionalProperties": _ref("schemas", "StatsDocument"),
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
            "status": _per_channel(_ref("schemas", "Colour")),
            "level": _ref("schemas", "Colour"),
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
                            {"type": "string", "contentMediaType": JSON, "contentSchema": _ref("schemas", "Window")},
                            _ref("schemas", "LegacyWindow"),
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
                    "data": {"type": "string", "contentMediaType": JSON, "contentSchema": _ref("schemas", "Window")},
                },
                "not": {"required": ["id"]},
            },
            {
                "type": "object",
                "required": ["data", "event"],
                "properties": {
                    "event": {"const": "reset"},
                    "data": {"type": "string", "contentMediaType": JSON, "contentSchema": _ref("schemas", "Reset")},
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

_SELECTION = (
    "Which stream: `stream`, else `household` and `interval`, else the `stream_id` cookie, else (a request naming no"
    " stream at all) the latest setup. A `stream` or cookie naming a stream this bridge no longer holds is a 404"
    ' `{"error": "Stream expired: set up again."}`, never another stream.'
)

PARAMETERS: Final[JsonObject] = {
    "Stream": {"name": "stream", "in": "query", "schema": {"type": "string"}, "description": "a stream_id"},
    "Household": {
        "name": "household",
        "in": "query",
        "schema": {"type": "string", "pattern": f"^{METER_ID_PATTERN}$"},
        "example": "A",
    },
    "Interval": {
        "name": "interval",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_INTERVAL_S},
        "example": 5,
    },
    "StartIndex": {
        "name": "start_index",
        "in": "query",
        "schema": {"type": "integer", "minimum": 0, "maximum": MAX_START_INDEX},
    },
    "Pace": {"name": "pace", "in": "query", "schema": {"enum": ["interval", "none", ""]}},
    "By": {"name": "by", "in": "query", "schema": {"enum": ["day", "hour", ""]}},
    "StreamCookie": {"name": "stream_id", "in": "cookie", "schema": {"type": "string"}},
}

_EVENT_ID = {
    "type": "string",
    "pattern": r"^\s*([0-9]{1,10})?\s*$",
    "description": "the id of the last event received (empty: none)",
    "example": "1795672845",
}

RESPONSES: Final[JsonObject] = {
    "BadRequest": _error("Invalid input; the message says which."),
    "NotFound": _error(
        'No such path; or the stream named (stream, cookie) is unknown or expired: "Stream expired: set up again.";'
        ' or no setup yet: "First try stream_setup."'
    ),
    "TooManyRequests": _error(
        f"Too many setups from this client address (a burst of {DEFAULT_BURST}, then {DEFAULT_RATE_PER_S:g} a"
        " second); try again after Retry-After seconds.",
        headers={"Retry-After": {"schema": {"type": "string", "pattern": "^[0-9]+$"}, "required": True}},
    ),
    "MethodNotAllowed": _error(
        "Any other method on this path.", headers={"Allow": {"schema": {"type": "string"}, "required": True}}
    ),
    "TooLarge": _error(f"Request body over {MAX_BODY_BYTES} bytes."),
}


def _responses(ok: JsonObject, *errors: str) -> JsonObject:
    names = {"400": "BadRequest", "404": "NotFound", "413": "TooLarge", "429": "TooManyRequests"}
    responses: JsonObject = {"200": ok}
    responses.update({status: _ref("responses", names[status]) for status in errors})
    responses["405"] = _ref("responses", "MethodNotAllowed")
    return responses


_SELECTION_PARAMS = [_ref("parameters", n) for n in ("Stream", "Household", "Interval", "StartIndex", "StreamCookie")]

PATHS: Final[JsonObject] = {
    "/stream_setup": {
        "post": {
            "operationId": "stream_setup",
            "summary": "Create a stream of one household at one interval",
            "requestBody": {
                "required": True,
                "content": {
                    JSON: {"schema": _ref("schemas", "SetupRequest"), "example": {"household": "A", "interval": 5}}
                },
            },
            "responses": _responses(
                _json(
                    _ref("schemas", "Setup"),
                    "The stream; also set as the stream_id cookie.",
                    headers={"Set-Cookie": {"schema": {"type": "string", "pattern": "^stream_id="}}},
                ),
                "400",
                "413",
                "429",
            ),
        },
        "options": {
            "operationId": "stream_setup_preflight",
            "summary": "CORS preflight (answered with CORS headers only for an origin in FLEET_CORS_ORIGINS)",
            "parameters": [
                {"name": "Origin", "in": "header", "schema": {"type": "string"}},
                {"name": "Access-Control-Request-Method", "in": "header", "schema": {"type": "string"}},
                {"name": "Access-Control-Request-Headers", "in": "header", "schema": {"type": "string"}},
            ],
            "responses": {
                "200": {
                    "description": "The methods served (as Allow); for an allowed origin Access-Control-Allow-* and"
                    " Max-Age.",
                    "content": {JSON: {"schema": _ref("schemas", "Options")}},
                    "headers": {
                        "Allow": {"schema": {"type": "string"}, "required": True},
                        "Access-Control-Allow-Origin": {"schema": {"type": "string"}},
                        "Access-Control-Allow-Methods": {"schema": {"type": "string"}},
                        "Access-Control-Allow-Headers": {"schema": {"type": "string"}},
                        "Access-Control-Max-Age": {"schema": {"type": "string", "pattern": "^[0-9]+$"}},
                    },
                }
            },
        },
    },
    "/stream_qstats": {
        "get": {
            "operationId": "stream_qstats",
            "summary": "Quick statistics of the selected stream's household and interval",
            "description": _SELECTION,
            "parameters": [*_SELECTION_PARAMS, _ref("parameters", "By")],
            "responses": {
                **_responses(_json(_ref("schemas", "QuickStats"), "Statistics of the last 24 h."), "400", "404"),
                "503": _json(
                    _ref("schemas", "WarmingUp"),
                    "No complete window yet; try again after Retry-After seconds.",
                    headers={"Retry-After": {"schema": {"type": "string", "pattern": "^[0-9]+$"}, "required": True}},
                ),
            },
        }
    },
    "/stream_data": {
        "get": {
            "operationId": "stream_data",
            "summary": "Server-Sent Events: one event per final window, comment heartbeats in between; never ends",
            "description": _SELECTION
            + " Events: one per final window (`id:` its end); `event: revision` (no `id:`) when readings that arrive"
            " late correct a window already sent, with that window's corrected JSON (json format only); `event: reset`"
            " when history no longer holds the next window.",
            "parameters": [
                *_SELECTION_PARAMS,
                _ref("parameters", "Pace"),
                _ref("parameters", "By"),
                {"name": "format", "in": "query", "schema": {"enum": ["json", "legacy"]}},
                {"name": "last_event_id", "in": "query", "schema": _EVENT_ID},
                {"name": "Last-Event-ID", "in": "header", "schema": _EVENT_ID},
            ],
            "responses": _responses(
                {
                    "description": "The stream (retry: 3000 first; event: revision for a corrected window; event:"
                    " reset when history lost the next window).",
                    "content": {"text/event-stream": {"schema": _ref("schemas", "Event")}},
                },
                "400",
                "404",
            ),
        }
    },
    "/healthz": {
        "get": {
            "operationId": "healthz",
            "summary": "Liveness, MQTT connection, meters heard and message counters",
            "responses": {
                **_responses(_json(_ref("schemas", "Health"), "Healthy.")),
                "503": _json(
                    _ref("schemas", "HealthDegraded"),
                    "Degraded: online meters silent, the MQTT session silent, or disconnected too long (reason).",
                ),
            },
        }
    },
    "/": {
        "get": {
            "operationId": "index",
            "summary": "The dashboard for a browser (Accept: text/html), else the JSON index of this server",
            "parameters": [{"name": "format", "in": "query", "schema": {"enum": ["json", "html"]}}],
            "responses": _responses(
                {
                    "description": "Endpoints and known households, or the dashboard page.",
                    "content": {
                        JSON: {"schema": _ref("schemas", "Index")},
                        "text/html": {"schema": {"type": "string"}},
                    },
                },
                "400",
            ),
        }
    },
    "/api/meters": {
        "get": {
            "operationId": "api_meters",
            "summary": "Per meter: availability, last seq, received, duplicates, gaps open and repaired, rejects",
            "responses": _responses(_json(_ref("schemas", "Meters"), "Every known meter's delivery counters.")),
        }
    },
    "/dashboard/households": {
        "get": {
            "operationId": "dashboard_households",
            "summary": "Known households with their simulated time, for the dashboard",
            "responses": _responses(_json(_ref("schemas", "DashboardHouseholds"), "Households and page settings.")),
        }
    },
    "/openapi.json": {
        "get": {
            "operationId": "openapi",
            "summary": "This document",
            "responses": _responses(
                _json({"type": "object", "required": ["openapi", "info", "paths"]}, "OpenAPI 3.1 document.")
            ),
        }
    },
    "/metrics": {
        "get": {
            "operationId": "metrics",
            "summary": "Prometheus metrics, text exposition format 0.0.4",
            "responses": _responses(
                {"description": "Metrics.", "content": {"text/plain": {"schema": {"type": "string"}}}}
            ),
        }
    },
    "/static/{filename}": {
        "get": {
            "operationId": "static",
            "summary": "Files of the package's static folder (Flask's static route)",
            "parameters": [{"name": "filename", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": _responses({"description": "The file.", "content": {"*/*": {}}}, "404"),
        }
    },
}

DOCUMENT: Final[JsonObject] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Smart-meter fleet bridge",
        "version": "1.0.0",
        "description": (
            "The original smart-home HTTP/SSE API served from an MQTT meter fleet. Every error is JSON "
            '`{"error": "..."}`: 400 invalid input (or a request line or header the server cannot parse), 404 unknown'
            " path or stream (an expired stream is never replaced by another), 405 wrong method, 413 body over"
            f" {MAX_BODY_BYTES} bytes, 414 request line too long, 429 too many setups from one address (with"
            " Retry-After), 431 headers too large or too many, 503 statistics warming up (with Retry-After). "
            "OPTIONS answers JSON too. "
            "CORS headers only for the origins in FLEET_CORS_ORIGINS."
        ),
    },
    "paths": PATHS,
    "components": {"schemas": SCHEMAS, "parameters": PARAMETERS, "responses": RESPONSES},
}

bp = Blueprint("openapi", __name__)


@bp.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI document of this API."""
    return jsonify(DOCUMENT)
