"""config.wire: the MQTT payloads; every reject reason, encode/decode round trip (the topics: test_topics)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from config.errors import PayloadError
from config.topics import batch_topic, parse_topic, reading_topic
from config.wire import (
    MAX_ABS_POWER_W,
    MAX_BATCH,
    MAX_ENERGY_KWH,
    MAX_PAYLOAD_BYTES,
    MAX_SEQ,
    MAX_TS,
    MIN_TS,
    READING_FIELDS,
    REASONS,
    Reading,
    decode_batch,
    decode_reading,
    decode_status,
    encode_batch,
    encode_reading,
    format_ts,
    parse_ts,
    split_batches,
)
from tests.support.strategies import ENERGIES, POWERS

T0 = 1_704_067_200  # 2024-01-01T00:00:00Z
TOPIC = "meters/A/reading"
# An example reading as the contract describes it (one line of UTF-8 JSON, W and kWh).
EXAMPLE = (
    b'{"meter": "A", "seq": 7, "ts": "2024-01-01T00:00:05Z", "ac_w": 1500.0, "geyser_w": null, '
    b'"overall_w": 2234.5, "ac_kwh": 1.25, "geyser_kwh": 0.0, "overall_kwh": 3.5}'
)


def body(**changes: Any) -> bytes:
    """The example payload with some fields replaced."""
    doc = json.loads(EXAMPLE)
    for key, value in changes.items():
        doc[key] = value
    return json.dumps(doc).encode()


def reason_of(topic: str, payload: bytes) -> str:
    with pytest.raises(PayloadError) as info:
        decode_reading(topic, payload)
    assert info.value.reason in REASONS
    return info.value.reason


def test_example_payload_decodes() -> None:
    reading = decode_reading(TOPIC, EXAMPLE)
    assert reading == Reading("A", 7, T0 + 5, 1500.0, None, 2234.5, 1.25, 0.0, 3.5)
    assert reading.powers_kw() == (1.5, None, 2.2345)


def test_round_trip_and_rounding() -> None:
    original = Reading("meter_1-x", 2**40, T0 + 59, 1500.04, -3.26, None, 1.234567, 0.0, 12.00004)
    payload = encode_reading(original)
    assert b"\n" not in payload
    doc = json.loads(payload)
    assert list(doc) == list(READING_FIELDS)
    assert doc["ts"] == "2024-01-01T00:00:59Z"
    assert (doc["ac_w"], doc["geyser_w"], doc["overall_w"]) == (1500.0, -3.3, None)
    assert (doc["ac_kwh"], doc["overall_kwh"]) == (1.2346, 12.0)
    decoded = decode_reading(reading_topic("meter_1-x"), payload)
    assert decoded == Reading("meter_1-x", 2**40, T0 + 59, 1500.0, -3.3, None, 1.2346, 0.0, 12.0)
    assert encode_reading(decoded) == payload


@pytest.mark.parametrize(
    ("text", "epoch"),
    [("2000-01-01T00:00:00Z", 946_684_800), ("2024-01-01T00:00:00Z", T0), ("2024-02-29T23:59:59Z", 1_709_251_199)],
)
def test_ts_round_trip(text: str, epoch: int) -> None:
    assert parse_ts(text) == epoch
    assert format_ts(epoch) == text


@pytest.mark.parametrize(
    "topic",
    [
        "",
        "meters",
        "meters/A",
        "meter/A/reading",
        "Meters/A/reading",
        "meters/A/reading/extra",
        "/meters/A/reading",
        "meters//reading",
        "meters/A/other",
        "meters/A+/reading",
        "meters/+/reading",
        "meters/#/reading",
        "meters/A B/reading",
        "meters/A\x00/reading",
        "meters/" + "a" * 65 + "/reading",
        "meters/A/status",  # a status topic is not a reading topic
    ],
)
def test_bad_topic(topic: str) -> None:
    assert reason_of(topic, EXAMPLE) == "bad_topic"


def test_size_limit_is_inclusive() -> None:
    padded = EXAMPLE + b" " * (MAX_PAYLOAD_BYTES - len(EXAMPLE))
    assert len(padded) == MAX_PAYLOAD_BYTES
    assert decode_reading(TOPIC, padded).seq == 7
    assert reason_of(TOPIC, padded + b" ") == "too_large"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\xfe", "bad_utf8"),
        (EXAMPLE.replace(b'"A"', b'"\xc3"'), "bad_utf8"),
        (b"", "bad_json"),
        (b"{", "bad_json"),
        (b"{'meter': 'A'}", "bad_json"),
        (EXAMPLE.replace(b"1500.0", b"NaN"), "bad_json"),
        (EXAMPLE.replace(b"1500.0", b"Infinity"), "bad_json"),
        (EXAMPLE.replace(b"1500.0", b"-Infinity"), "bad_json"),
        (b"[" * 20_000 + b"]" * 20_000, "bad_json"),  # nesting deeper than the recursion limit
        (b"[]", "not_object"),
        (b"[1, 2]", "not_object"),
        (b'"A"', "not_object"),
        (b"42", "not_object"),
        (b"null", "not_object"),
        (body(extra=1), "unknown_key"),
        (body(meter="B"), "meter_mismatch"),
        (body(meter=5), "meter_mismatch"),
    ],
)
def test_reading_rejects(payload: bytes, reason: str) -> None:
    assert reason_of(TOPIC, payload) == reason


@pytest.mark.parametrize("field", READING_FIELDS)
def test_missing_key(field: str) -> None:
    doc = json.loads(EXAMPLE)
    del doc[field]
    with pytest.raises(PayloadError) as info:
        decode_reading(TOPIC, json.dumps(doc).encode())
    assert info.value.reason == "missing_key"
    assert field in info.value.detail


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("seq", True),
        ("seq", False),
        ("seq", 7.0),
        ("seq", "7"),
        ("seq", None),
        ("ts", T0),
        ("ts", None),
        ("ac_w", "1500"),
        ("ac_w", True),
        ("geyser_w", []),
        ("overall_w", {}),
        ("ac_kwh", None),
        ("geyser_kwh", False),
        ("overall_kwh", "3.5"),
    ],
)
def test_bad_type(field: str, value: object) -> None:
    assert reason_of(TOPIC, body(**{field: value})) == "bad_type"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("seq", -1),
        ("seq", 2**63),
        ("ac_w", 100_000_000.1),
        ("geyser_w", -100_000_000.1),
        ("overall_w", 1e300),
        ("ac_kwh", -0.1),
        ("geyser_kwh", -1e-9),
        ("overall_kwh", 1e9 + 1),
        ("ts", "1999-12-31T23:59:59Z"),
        ("ts", "2200-01-01T00:00:00Z"),
    ],
)
def test_out_of_range(field: str, value: object) -> None:
    assert reason_of(TOPIC, body(**{field: value})) == "out_of_range"


def test_float_overflow_literal_is_out_of_range() -> None:
    assert reason_of(TOPIC, EXAMPLE.replace(b"1500.0", b"1e400")) == "out_of_range"


@pytest.mark.parametrize("field", ["ac_w", "overall_kwh"])
def test_huge_integer_is_out_of_range(field: str) -> None:
    assert reason_of(TOPIC, body(**{field: 10**400})) == "out_of_range"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("seq", 0),
        ("seq", 2**63 - 1),
        ("ac_w", 100_000_000.0),
        ("ac_w", -100_000_000.0),
        ("ac_w", 0),
        ("overall_kwh", 1e9),
        ("ts", "2000-01-01T00:00:00Z"),
        ("ts", "2199-12-31T23:59:59Z"),
    ],
)
def test_boundaries_accepted(field: str, value: object) -> None:
    reading = decode_reading(TOPIC, body(**{field: value}))
    expected = parse_ts(value) if field == "ts" and isinstance(value, str) else value
    assert getattr(reading, field) == expected


@pytest.mark.parametrize(
    "ts",
    [
        "",
        "2024-01-01 00:00:05Z",
        "2024-01-01T00:00:05",
        "2024-01-01T00:00:05+00:00",
        "2024-01-01T00:00:05.5Z",
        "2024-1-01T00:00:05Z",
        "2024-02-30T00:00:00Z",
        "2023-02-29T00:00:00Z",
        "2024-01-01T24:00:00Z",
        "2024-13-01T00:00:00Z",
        "2024-01-01t00:00:05z",
    ],
)
def test_bad_ts(ts: str) -> None:
    assert reason_of(TOPIC, body(ts=ts)) == "bad_ts"


def test_bad_ts_non_ascii_digits() -> None:
    assert reason_of(TOPIC, body(ts="\u0662\u0660\u0662\u0664-01-01T00:00:00Z")) == "bad_ts"


@pytest.mark.parametrize(("payload", "status"), [(b"online", "online"), (b"offline", "offline")])
def test_decode_status(payload: bytes, status: str) -> None:
    assert decode_status("meters/A/status", payload) == ("A", status)


@pytest.mark.parametrize("payload", [b"", b"ONLINE", b"online\n", b'"online"', b"on", b"\xff"])
def test_bad_status(payload: bytes) -> None:
    with pytest.raises(PayloadError) as info:
        decode_status("meters/A/status", payload)
    assert info.value.reason == "bad_status"


@pytest.mark.parametrize("topic", ["meters/A/reading", "meters/A+/status", "status/A/meters"])
def test_status_bad_topic(topic: str) -> None:
    with pytest.raises(PayloadError) as info:
        decode_status(topic, b"online")
    assert info.value.reason == "bad_topic"


# --- the batch form: meters/<id>/readings, a JSON array of readings ---


def _readings(count: int, meter: str = "A") -> list[Reading]:
    return [Reading(meter, seq, T0 + seq, 1500.0, None, 2000.0, 0.1, 0.0, 0.2) for seq in range(count)]


def test_batch_round_trip() -> None:
    readings = _readings(3)
    payload = encode_batch([encode_reading(r) for r in readings])
    assert json.loads(payload)[1]["seq"] == 1  # plain JSON: an array of the single-reading objects
    decoded, errors = decode_batch(batch_topic("A"), payload)
    assert (decoded, errors) == (readings, [])
    assert parse_topic("meters/A/readings") == ("A", "readings")


def test_a_bad_element_costs_only_itself() -> None:
    good = [encode_reading(r) for r in _readings(3)]
    elements = [good[0], b'{"meter": "B"}', good[2], b"17", encode_reading(_readings(1, "B")[0])]
    decoded, errors = decode_batch("meters/A/readings", encode_batch(elements))
    assert [r.seq for r in decoded] == [0, 2]
    assert sorted(e.reason for e in errors) == ["meter_mismatch", "missing_key", "not_object"]


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("meters/A/reading", b"[]", "bad_topic"),
        ("meters/A/readings", b"{}", "bad_type"),
        ("meters/A/readings", b"[]", "out_of_range"),
        ("meters/A/readings", b"[" + b",".join([b"1"] * (MAX_BATCH + 1)) + b"]", "out_of_range"),
        ("meters/A/readings", b"[", "bad_json"),
        ("meters/A/readings", b"[" + b" " * MAX_PAYLOAD_BYTES + b"]", "too_large"),
    ],
)
def test_batch_rejects_as_a_whole(topic: str, payload: bytes, reason: str) -> None:
    with pytest.raises(PayloadError) as info:
        decode_batch(topic, payload)
    assert info.value.reason == reason


def test_split_batches_respects_count_and_size() -> None:
    payloads = [encode_reading(r) for r in _readings(450)]
    runs = split_batches(payloads)
    assert [len(run) for run in runs] == [MAX_BATCH, MAX_BATCH, 450 - 2 * MAX_BATCH]
    assert [p for run in runs for p in run] == payloads
    big = [b"x" * 30_000] * 5  # size, not count, cuts these
    assert [len(run) for run in split_batches(big)] == [2, 2, 1]
    assert all(len(encode_batch(run)) <= MAX_PAYLOAD_BYTES for run in split_batches(big))
    longest = Reading("M" * 64, 2**63 - 1, T0, -1e8, -1e8, -1e8, 1e9, 1e9, 1e9)  # the widest reading there is
    assert len(encode_batch([encode_reading(longest)] * MAX_BATCH)) <= MAX_PAYLOAD_BYTES


_POWERS = POWERS | st.integers(-(10**8), 10**8)  # a number JSON gives as an integer is valid too
_ENERGIES = ENERGIES | st.integers(0, 10**9)


@given(
    meter=st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True),
    seq=st.integers(0, MAX_SEQ),
    ts=st.integers(MIN_TS, MAX_TS - 1),
    powers=st.tuples(_POWERS, _POWERS, _POWERS),
    energies=st.tuples(_ENERGIES, _ENERGIES, _ENERGIES),
)
def test_encode_reading_writes_the_bytes_json_dumps_would(
    meter: str,
    seq: int,
    ts: int,
    powers: tuple[float | None, float | None, float | None],
    energies: tuple[float, float, float],
) -> None:
    reading = Reading(meter, seq, ts, *powers, *energies)
    watts = [None if v is None else round(float(v), 1) for v in powers]
    body = {
        "meter": meter,
        "seq": seq,
        "ts": format_ts(ts),
        **dict(zip(("ac_w", "geyser_w", "overall_w"), watts, strict=True)),
        **{k: round(v, 4) for k, v in zip(("ac_kwh", "geyser_kwh", "overall_kwh"), energies, strict=True)},
    }
    assert encode_reading(reading) == json.dumps(body, allow_nan=False).encode()
    assert decode_reading(reading_topic(meter), encode_reading(reading)).seq == seq


# Reading's quick check (floats and ints as JSON gives them) and its full checks must draw the same line.
@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("seq", 0, None),
        ("seq", MAX_SEQ, None),
        ("seq", MAX_SEQ + 1, "out_of_range"),
        ("seq", -1, "out_of_range"),
        ("seq", True, "bad_type"),
        ("seq", 7.0, "bad_type"),
        ("ts", MIN_TS, None),
        ("ts", MAX_TS - 1, None),
        ("ts", MAX_TS, "out_of_range"),
        ("ts", MIN_TS - 1, "out_of_range"),
        ("ts", False, "bad_type"),
        ("ac_w", MAX_ABS_POWER_W, None),
        ("ac_w", -MAX_ABS_POWER_W, None),
        ("ac_w", 1500, None),  # an integer, as another publisher may write it
        ("ac_w", MAX_ABS_POWER_W * 1.0000001, "out_of_range"),
        ("geyser_w", float("nan"), "out_of_range"),
        ("overall_w", float("-inf"), "out_of_range"),
        ("overall_w", True, "bad_type"),
        ("overall_w", "1.0", "bad_type"),
        ("ac_kwh", 0.0, None),
        ("ac_kwh", MAX_ENERGY_KWH, None),
        ("geyser_kwh", 0, None),
        ("geyser_kwh", -0.1, "out_of_range"),
        ("overall_kwh", float("inf"), "out_of_range"),
        ("overall_kwh", None, "bad_type"),
        ("meter", "a/b", "bad_type"),
    ],
)
def test_reading_bounds(field: str, value: object, reason: str | None) -> None:
    fields: dict[str, Any] = {
        "meter": "A",
        "seq": 7,
        "ts": T0,
        "ac_w": 1500.0,
        "geyser_w": None,
        "overall_w": 2234.5,
        "ac_kwh": 1.25,
        "geyser_kwh": 0.0,
        "overall_kwh": 3.5,
    }
    fields[field] = value
    if reason is None:
        assert getattr(Reading(**fields), field) == value
    else:
        with pytest.raises(PayloadError) as info:
            Reading(**fields)
        assert info.value.reason == reason


def test_a_refused_time_is_refused_again() -> None:
    for _ in range(2):  # the second answer comes from the cache of parsed times
        with pytest.raises(PayloadError):
            parse_ts("2024-02-30T00:00:00Z")
        assert parse_ts("2024-02-29T00:00:00Z") == T0 + 59 * 86_400
