"""The MQTT wire contract shared by the simulator and the bridge: what its messages hold (the topics they go on are
``config.topics``).

Payloads: a reading is one line of UTF-8 JSON (``Reading``, ``encode_reading``); a batch is a JSON array of 1..
``MAX_BATCH`` such readings of one meter, the whole message at most ``MAX_PAYLOAD_BYTES``, each element judged like a
reading alone; a status is ``online`` or ``offline``; a replay request is ``{"from_seq": a, "to_seq": b}`` (inclusive,
at most ``MAX_REPLAY`` seqs).

A reading covers the simulated second ``[ts, ts + 1)`` (UTC, ISO-8601 with ``Z``). Powers are W (``null`` = the meter
had no value for that channel); energies are monotonic kWh counters. ``seq`` increases by exactly 1 per reading of a
meter. Decoding validates everything and raises ``PayloadError`` whose ``reason`` is one of ``REASONS``.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from config.errors import PayloadError
from config.topics import METER_ID_PATTERN, parse_topic, valid_meter_id

_TS_LENGTH: Final = 20  # len("2024-01-01T00:00:00Z")
TS_PATTERN: Final = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z"  # a wire timestamp (whole, unanchored)
_TS_RE: Final = re.compile(TS_PATTERN)

ONLINE: Final = "online"
OFFLINE: Final = "offline"
UNKNOWN: Final = "unknown"  # the bridge's word for a meter whose status it has not heard, or heard as junk

MAX_PAYLOAD_BYTES: Final = 64 * 1024
MAX_BATCH: Final = 200  # readings per batch message (about 190 bytes each, at most about 260: under 64 KiB)
MAX_ABS_POWER_W: Final = 100_000_000.0  # 100 MW: above any injected spike (x100 of an office), below nonsense
MAX_ENERGY_KWH: Final = 1e9
MIN_TS: Final = 946_684_800  # 2000-01-01T00:00:00Z
MAX_TS: Final = 7_258_118_400  # 2200-01-01T00:00:00Z
MAX_SEQ: Final = 2**63 - 1

POWER_FIELDS: Final = ("ac_w", "geyser_w", "overall_w")
ENERGY_FIELDS: Final = ("ac_kwh", "geyser_kwh", "overall_kwh")
READING_FIELDS: Final = ("meter", "seq", "ts", *POWER_FIELDS, *ENERGY_FIELDS)
_FIELD_SET: Final = frozenset(READING_FIELDS)

# Reason codes for rejected messages (the bridge counts rejects by these).
REASONS: Final = (
    "bad_topic",
    "too_large",
    "bad_utf8",
    "bad_json",
    "not_object",
    "missing_key",
    "unknown_key",
    "bad_type",
    "out_of_range",
    "bad_ts",
    "meter_mismatch",
    "bad_status",
    # A valid reading that history refuses (bridge.ingest.history, bridge.ingest.sequence): one that could not come from
    # the meter running for real, or that would replace a reading already held.
    "too_old",
    "conflict",
    "future",
    "seq_jump",
    "seq_reused",
)


MAX_REPLAY: Final = 10_000


def encode_replay(from_seq: int, to_seq: int) -> bytes:
    """A replay request for seqs ``from_seq..to_seq`` (inclusive)."""
    return json.dumps({"from_seq": from_seq, "to_seq": to_seq}).encode()


def decode_replay(payload: bytes) -> tuple[int, int]:
    """``(from_seq, to_seq)`` of a replay request; PayloadError if it is not one."""
    body = _load_json(payload)
    if not isinstance(body, dict) or set(body) != {"from_seq", "to_seq"}:
        raise PayloadError("bad_type", "a replay request is {from_seq, to_seq}")
    first, last = body["from_seq"], body["to_seq"]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (first, last)):
        raise PayloadError("bad_type", "seqs must be integers")
    if not 0 <= first <= last <= MAX_SEQ or last - first + 1 > MAX_REPLAY:
        raise PayloadError("out_of_range", f"replay {first}..{last}")
    return first, last


def format_ts(epoch_s: int) -> str:
    """ISO-8601 UTC with ``Z`` for whole epoch seconds."""
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_ts(text: str) -> int:
    """Epoch seconds of an ISO-8601 UTC ``YYYY-MM-DDTHH:MM:SSZ`` string; PayloadError('bad_ts') otherwise."""
    epoch_s = _epoch_s(text) if len(text) == _TS_LENGTH else None  # only such texts are cached: 20 characters each
    if epoch_s is None:
        raise PayloadError("bad_ts", text[:40])
    return epoch_s


# Every meter of a fleet sends the same second's text: one parse serves them all (0.15 us a reading, not 1.2).
@functools.lru_cache(maxsize=4096)
def _epoch_s(text: str) -> int | None:
    """``parse_ts``'s value, or None if ``text`` is not such a time."""
    if _TS_RE.fullmatch(text) is None:
        return None
    # What strptime("%Y-%m-%dT%H:%M:%SZ") accepts once the pattern matched, at a tenth of its cost.
    midnight = _midnight(text[:10])
    hour, minute, second = int(text[11:13]), int(text[14:16]), int(text[17:19])
    if midnight is None or hour > 23 or minute > 59 or second > 59:
        return None
    return midnight + hour * 3600 + minute * 60 + second


@functools.lru_cache(maxsize=4096)
def _midnight(date: str) -> int | None:
    """Epoch seconds of the UTC midnight that starts ``YYYY-MM-DD`` (a matched pattern), None if no such date."""
    try:
        return int(datetime(int(date[:4]), int(date[5:7]), int(date[8:10]), tzinfo=UTC).timestamp())
    except ValueError:
        return None


def _finite(value: object, name: str, what: str) -> float:
    """``value`` as a finite float: bad_type (``name must be what``) unless an int or float that is not a bool;
    out_of_range for NaN, infinities and integers too large for a float."""
    if type(value) is float:  # what JSON decoding gives: checked first, it is every field of every reading
        number = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError as exc:
            raise PayloadError("out_of_range", name) from exc
    else:
        raise PayloadError("bad_type", f"{name} must be {what}")
    if not math.isfinite(number):
        raise PayloadError("out_of_range", name)
    return number


@dataclass(frozen=True, slots=True)
class Reading:
    """One meter's sample of one simulated second ``[ts, ts + 1)``; validates itself."""

    meter: str
    seq: int
    ts: int
    ac_w: float | None
    geyser_w: float | None
    overall_w: float | None
    ac_kwh: float
    geyser_kwh: float
    overall_kwh: float

    def __post_init__(self) -> None:
        # The usual reading (what JSON decoding of a valid one gives: ints, floats, None) passes these comparisons at
        # a third of the cost of the checks below, which run for anything else and name what is wrong (every reading
        # is built here: 100,000 a drain).
        seq, ts, ac, geyser, overall = self.seq, self.ts, self.ac_w, self.geyser_w, self.overall_w
        ac_kwh, geyser_kwh, overall_kwh = self.ac_kwh, self.geyser_kwh, self.overall_kwh
        if (
            type(seq) is int
            and 0 <= seq <= MAX_SEQ
            and type(ts) is int
            and MIN_TS <= ts < MAX_TS
            and (ac is None or (type(ac) is float and -MAX_ABS_POWER_W <= ac <= MAX_ABS_POWER_W))
            and (geyser is None or (type(geyser) is float and -MAX_ABS_POWER_W <= geyser <= MAX_ABS_POWER_W))
            and (overall is None or (type(overall) is float and -MAX_ABS_POWER_W <= overall <= MAX_ABS_POWER_W))
            and type(ac_kwh) is float
            and 0.0 <= ac_kwh <= MAX_ENERGY_KWH
            and type(geyser_kwh) is float
            and 0.0 <= geyser_kwh <= MAX_ENERGY_KWH
            and type(overall_kwh) is float
            and 0.0 <= overall_kwh <= MAX_ENERGY_KWH
            and valid_meter_id(self.meter)
        ):
            return
        if not valid_meter_id(self.meter):
            raise PayloadError("bad_type", "meter must match " + METER_ID_PATTERN)
        if not isinstance(self.seq, int) or isinstance(self.seq, bool):
            raise PayloadError("bad_type", "seq must be an integer")
        if not 0 <= self.seq <= MAX_SEQ:
            raise PayloadError("out_of_range", "seq")
        if not isinstance(self.ts, int) or isinstance(self.ts, bool):
            raise PayloadError("bad_type", "ts")
        if not MIN_TS <= self.ts < MAX_TS:
            raise PayloadError("out_of_range", "ts")
        for name in POWER_FIELDS:
            value = getattr(self, name)
            if value is not None and not abs(_finite(value, name, "a number or null")) <= MAX_ABS_POWER_W:
                raise PayloadError("out_of_range", name)
        for name in ENERGY_FIELDS:
            if not 0.0 <= _finite(getattr(self, name), name, "a number") <= MAX_ENERGY_KWH:
                raise PayloadError("out_of_range", name)

    def powers_kw(self) -> tuple[float | None, float | None, float | None]:
        """AC, Geyser and Overall power in kW (None where the meter had no value)."""
        return tuple(None if w is None else w / 1000.0 for w in (self.ac_w, self.geyser_w, self.overall_w))  # type: ignore[return-value]


def encode_reading(reading: Reading) -> bytes:
    """One-line UTF-8 JSON for a reading: powers to 0.1 W, energies to 0.1 Wh.

    The same bytes as ``json.dumps`` of the fields in this order (tested), written out directly: a fleet process encodes
    10,000 of these a second. A valid ``Reading`` needs no escaping (its meter id is ``[A-Za-z0-9_-]``) and holds only
    finite numbers.
    """
    return (
        f'{{"meter": "{reading.meter}", "seq": {reading.seq}, "ts": "{_ts_text(reading.ts)}", '
        f'"ac_w": {_number(reading.ac_w, 1)}, "geyser_w": {_number(reading.geyser_w, 1)}, '
        f'"overall_w": {_number(reading.overall_w, 1)}, "ac_kwh": {round(reading.ac_kwh, 4)!r}, '
        f'"geyser_kwh": {round(reading.geyser_kwh, 4)!r}, "overall_kwh": {round(reading.overall_kwh, 4)!r}}}'
    ).encode()


@functools.lru_cache(maxsize=1024)
def _ts_text(epoch_s: int) -> str:
    return format_ts(epoch_s)  # the seconds of a fleet's step are few and shared by every meter


def _number(value: float | None, digits: int) -> str:
    return "null" if value is None else repr(round(float(value), digits))


def _reject_constant(name: str) -> Any:
    raise PayloadError("bad_json", f"{name} is not JSON")


# One decoder for every message: json.loads(text, parse_constant=...) would build a new one each time.
_DECODER: Final = json.JSONDecoder(parse_constant=_reject_constant)


def _load_json(payload: bytes) -> Any:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadError("too_large", f"{len(payload)} bytes > {MAX_PAYLOAD_BYTES}")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError("bad_utf8", str(exc)[:80]) from exc
    try:
        if text.startswith("\ufeff"):  # json.loads refuses a BOM before decoding, and so do we
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        return _DECODER.decode(text)
    except PayloadError:
        raise
    except (ValueError, RecursionError) as exc:
        raise PayloadError("bad_json", str(exc)[:80]) from exc


def decode_reading(topic: str, payload: bytes) -> Reading:
    """Validate a reading message from ``topic``; PayloadError with a reason code if anything is off."""
    meter_id, kind = parse_topic(topic)
    if kind != "reading":
        raise PayloadError("bad_topic", f"{topic[:100]} is not a reading topic")
    return _reading_from(_load_json(payload), meter_id)


def encode_batch(payloads: Sequence[bytes]) -> bytes:
    """One batch message from encoded readings (``encode_reading``'s bytes) of one meter."""
    return b"[" + b",".join(payloads) + b"]"


def split_batches(payloads: Sequence[bytes], max_readings: int = MAX_BATCH) -> list[list[bytes]]:
    """Encoded readings cut into runs that each fit one batch message (``max_readings``, ``MAX_PAYLOAD_BYTES``)."""
    out: list[list[bytes]] = []
    chunk: list[bytes] = []
    size = 2  # the brackets
    for payload in payloads:
        if chunk and (len(chunk) >= max_readings or size + len(payload) + 1 > MAX_PAYLOAD_BYTES):
            out.append(chunk)
            chunk, size = [], 2
        chunk.append(payload)
        size += len(payload) + 1
    if chunk:
        out.append(chunk)
    return out


def decode_batch(topic: str, payload: bytes) -> tuple[list[Reading], list[PayloadError]]:
    """The readings of a batch message and the errors of its bad elements (each element is judged alone).

    PayloadError if the message as a whole is not a batch: wrong topic, too large, not JSON, not a non-empty array of
    at most ``MAX_BATCH`` elements.
    """
    meter_id, kind = parse_topic(topic)
    if kind != "readings":
        raise PayloadError("bad_topic", f"{topic[:100]} is not a batch topic")
    body = _load_json(payload)
    if not isinstance(body, list):
        raise PayloadError("bad_type", f"a batch is a JSON array, not {type(body).__name__}")
    if not 1 <= len(body) <= MAX_BATCH:
        raise PayloadError("out_of_range", f"a batch holds 1..{MAX_BATCH} readings, not {len(body)}")
    readings: list[Reading] = []
    errors: list[PayloadError] = []
    for element in body:
        try:
            readings.append(_reading_from(element, meter_id))
        except PayloadError as exc:
            errors.append(exc)
    return readings, errors


def _reading_from(body: object, meter_id: str) -> Reading:
    """A reading from one decoded JSON value, published on ``meter_id``'s topic; PayloadError otherwise."""
    if not isinstance(body, dict):
        raise PayloadError("not_object", type(body).__name__)
    if body.keys() != _FIELD_SET:  # a set comparison settles the usual case; then say what is wrong
        missing = [key for key in READING_FIELDS if key not in body]
        if missing:
            raise PayloadError("missing_key", ", ".join(missing))
        extra = sorted(str(key) for key in body if key not in READING_FIELDS)
        raise PayloadError("unknown_key", ", ".join(extra)[:100])
    if not isinstance(body["ts"], str):
        raise PayloadError("bad_type", "ts must be a string")
    if body["meter"] != meter_id:
        raise PayloadError("meter_mismatch", f"payload meter {str(body['meter'])[:70]!r} on topic of {meter_id!r}")
    return Reading(  # positional, in field order: cheaper than keywords, once a reading
        body["meter"],
        body["seq"],
        parse_ts(body["ts"]),
        body["ac_w"],
        body["geyser_w"],
        body["overall_w"],
        body["ac_kwh"],
        body["geyser_kwh"],
        body["overall_kwh"],
    )


def decode_status(topic: str, payload: bytes) -> tuple[str, str]:
    """``(meter_id, "online"|"offline")`` from a status message; PayloadError otherwise."""
    meter_id, kind = parse_topic(topic)
    if kind != "status":
        raise PayloadError("bad_topic", f"{topic[:100]} is not a status topic")
    if payload not in (ONLINE.encode(), OFFLINE.encode()):
        raise PayloadError("bad_status", repr(payload[:20]))
    return meter_id, payload.decode()
