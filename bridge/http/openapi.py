"""The bridge's OpenAPI 3.1 document, written by hand as data, and ``GET /openapi.json`` serving it.

Here: the operations (``PATHS``), their shared ``PARAMETERS`` and ``RESPONSES``, and the document assembled from them
and the body schemas of ``bridge.http.openapi_schemas``.

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

from bridge.http.openapi_schemas import JSON, SCHEMAS, JsonObject, ref
from bridge.http.ratelimit import DEFAULT_BURST, DEFAULT_RATE_PER_S
from bridge.http.validation import MAX_BODY_BYTES, MAX_INTERVAL_S, MAX_START_INDEX
from config.topics import METER_ID_PATTERN

_RETRY_AFTER: Final[JsonObject] = {  # a 429 and a 503: the seconds to wait
    "Retry-After": {"schema": {"type": "string", "pattern": "^[0-9]+$"}, "required": True}
}


def _json(schema: JsonObject, description: str, **extra: Any) -> JsonObject:
    return {"description": description, "content": {JSON: {"schema": schema}}, **extra}


def _error(description: str, **extra: Any) -> JsonObject:
    return _json(ref("schemas", "Error"), description, **extra)


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
        headers=_RETRY_AFTER,
    ),
    "MethodNotAllowed": _error(
        "Any other method on this path.", headers={"Allow": {"schema": {"type": "string"}, "required": True}}
    ),
    "TooLarge": _error(f"Request body over {MAX_BODY_BYTES} bytes."),
}


def _responses(ok: JsonObject, *errors: str) -> JsonObject:
    names = {"400": "BadRequest", "404": "NotFound", "413": "TooLarge", "429": "TooManyRequests"}
    responses: JsonObject = {"200": ok}
    responses.update({status: ref("responses", names[status]) for status in errors})
    responses["405"] = ref("responses", "MethodNotAllowed")
    return responses


_SELECTION_PARAMS = [ref("parameters", n) for n in ("Stream", "Household", "Interval", "StartIndex", "StreamCookie")]

PATHS: Final[JsonObject] = {
    "/stream_setup": {
        "post": {
            "operationId": "stream_setup",
            "summary": "Create a stream of one household at one interval",
            "requestBody": {
                "required": True,
                "content": {
                    JSON: {"schema": ref("schemas", "SetupRequest"), "example": {"household": "A", "interval": 5}}
                },
            },
            "responses": _responses(
                _json(
                    ref("schemas", "Setup"),
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
                    "content": {JSON: {"schema": ref("schemas", "Options")}},
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
            "parameters": [*_SELECTION_PARAMS, ref("parameters", "By")],
            "responses": {
                **_responses(_json(ref("schemas", "QuickStats"), "Statistics of the last 24 h."), "400", "404"),
                "503": _json(
                    ref("schemas", "WarmingUp"),
                    "No complete window yet; try again after Retry-After seconds.",
                    headers=_RETRY_AFTER,
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
                ref("parameters", "Pace"),
                ref("parameters", "By"),
                {"name": "format", "in": "query", "schema": {"enum": ["json", "legacy"]}},
                {"name": "last_event_id", "in": "query", "schema": _EVENT_ID},
                {"name": "Last-Event-ID", "in": "header", "schema": _EVENT_ID},
            ],
            "responses": _responses(
                {
                    "description": "The stream (retry: 3000 first; event: revision for a corrected window; event:"
                    " reset when history lost the next window).",
                    "content": {"text/event-stream": {"schema": ref("schemas", "Event")}},
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
                **_responses(_json(ref("schemas", "Health"), "Healthy.")),
                "503": _json(
                    ref("schemas", "HealthDegraded"),
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
                        JSON: {"schema": ref("schemas", "Index")},
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
            "responses": _responses(_json(ref("schemas", "Meters"), "Every known meter's delivery counters.")),
        }
    },
    "/dashboard/households": {
        "get": {
            "operationId": "dashboard_households",
            "summary": "Known households with their simulated time, for the dashboard",
            "responses": _responses(_json(ref("schemas", "DashboardHouseholds"), "Households and page settings.")),
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
