"""Validation of the HTTP API's inputs (pure): everything is checked before any state changes; the bounds and the
setup's answer that the routes and the OpenAPI document share are named here once.

Messages keep the original service's wording where it had one; new checks (bounds, types) get new messages.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from config.errors import RequestError
from config.topics import valid_meter_id

MAX_BODY_BYTES: Final = 16 * 1024  # a request body past this is a 413 (bridge.http.app)
MAX_INTERVAL_S: Final = 86_400
MAX_START_INDEX: Final = 86_399
INT_TEXT: Final = r"\s*[+-]?[0-9]{1,12}\s*"  # a whole number as text: "5", " 5 ", "+5"

# A valid setup's answer (bridge.http.api, documented by bridge.http.openapi): the original client matches this text.
SETUP_OK: Final = "Streaming setup and stats calculation successful"
INTERNAL: Final = "Internal error; see the bridge's log."  # a 500's message: bridge.http.app's and the worker's

REQUIRED: Final = "Household and interval parameters are required."
UNRECOGNIZED: Final = "Unrecognized house."
NOT_INTEGERS: Final = "Interval and start_index must be integers."
NOT_POSITIVE: Final = "Interval must be > 0 seconds."
TOO_LONG: Final = f"Interval must be at most {MAX_INTERVAL_S} seconds."
BAD_START: Final = f"start_index must be between 0 and {MAX_START_INDEX} (seconds since midnight)."
NOT_OBJECT: Final = 'Request body must be a JSON object, e.g. {"household": "A", "interval": 5}.'
NOT_STRING: Final = 'Household must be a string, e.g. "A".'

_INT_TEXT: Final = re.compile(INT_TEXT)
_EVENT_ID: Final = re.compile(r"[0-9]{1,10}")  # epoch seconds up to 2286; 12 digits overflowed datetime (a 500)


BAD_PACE: Final = 'pace must be "interval" (history one event per interval) or "none" (history at once).'
BAD_BY: Final = 'by must be "day" (one baseline) or "hour" (a baseline per hour of day).'


@dataclass(frozen=True, slots=True)
class SetupRequest:
    """A validated stream request."""

    household: str
    interval_s: int
    start_index: int | None
    paced: bool = True  # history replayed one event per interval (the original's pace), else at once
    by_hour: bool = False  # colours against the baseline of the window's hour of day


def parse_pace(value: object) -> bool:
    """``interval`` (paced, the default) or ``none``."""
    if value is None or value == "" or value == "interval":
        return True
    if value == "none":
        return False
    raise RequestError(BAD_PACE)


def parse_by(value: object) -> bool:
    """``day`` (the default) or ``hour``: whether colours use the hour-of-day baseline."""
    if value is None or value == "" or value == "day":
        return False
    if value == "hour":
        return True
    raise RequestError(BAD_BY)


def parse_json_object(body: bytes) -> dict[str, object]:
    """The request body as a JSON object, or RequestError."""
    try:
        parsed = json.loads(body.decode("utf-8"), parse_constant=lambda name: _raise(NOT_OBJECT))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise RequestError(NOT_OBJECT) from exc
    if not isinstance(parsed, dict):
        raise RequestError(NOT_OBJECT)
    return parsed


def _raise(message: str) -> object:
    raise RequestError(message)


def as_int(value: object) -> int:
    """A whole number from JSON (int, integral float, digit string); RequestError otherwise. 2.7 is not truncated."""
    if isinstance(value, bool):
        raise RequestError(NOT_INTEGERS)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INT_TEXT.fullmatch(value):
        return int(value)
    raise RequestError(NOT_INTEGERS)


def resolve_household(value: object, known: Iterable[str]) -> str:
    """The canonical id of a known household, matched exactly or else case-insensitively."""
    if not isinstance(value, str):
        raise RequestError(NOT_STRING)
    if not valid_meter_id(value):
        raise RequestError(UNRECOGNIZED)
    candidates = list(known)
    if value in candidates:
        return value
    folded = [c for c in candidates if c.casefold() == value.casefold()]
    if len(folded) == 1:
        return folded[0]
    raise RequestError(UNRECOGNIZED)


def parse_setup(params: Mapping[str, object], known: Iterable[str]) -> SetupRequest:
    """Validate ``household``, ``interval`` and optional ``start_index`` (JSON body or query parameters)."""
    household = params.get("household")
    interval = params.get("interval")
    if household is None or interval is None or household == "" or interval == "":
        raise RequestError(REQUIRED)
    if not isinstance(household, str):
        raise RequestError(NOT_STRING)
    interval_s = as_int(interval)
    raw_start = params.get("start_index")
    start_index = None if raw_start is None or raw_start == "" else as_int(raw_start)
    if interval_s <= 0:
        raise RequestError(NOT_POSITIVE)
    if interval_s > MAX_INTERVAL_S:
        raise RequestError(TOO_LONG)
    if start_index is not None and not 0 <= start_index <= MAX_START_INDEX:
        raise RequestError(BAD_START)
    paced, by_hour = parse_pace(params.get("pace")), parse_by(params.get("by"))
    return SetupRequest(resolve_household(household, known), interval_s, start_index, paced, by_hour)


def parse_event_id(value: str | None) -> int | None:
    """A ``Last-Event-ID`` (window end, epoch seconds); None if absent. RequestError if malformed."""
    if value is None or value.strip() == "":
        return None
    text = value.strip()
    if _EVENT_ID.fullmatch(text) is None:
        raise RequestError("Last-Event-ID must be an id this server sent (a whole number).")
    return int(text)
