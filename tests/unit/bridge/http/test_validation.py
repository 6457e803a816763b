"""bridge.http.validation: parse_setup, parse_json_object and parse_event_id, with the exact error messages."""

from __future__ import annotations

import pytest

from bridge.http.validation import (
    BAD_START,
    NOT_INTEGERS,
    NOT_OBJECT,
    NOT_POSITIVE,
    NOT_STRING,
    REQUIRED,
    TOO_LONG,
    UNRECOGNIZED,
    SetupRequest,
    parse_event_id,
    parse_json_object,
    parse_setup,
)
from config.errors import RequestError

KNOWN = ("A", "B", "C")


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"household": "A", "interval": 5}, SetupRequest("A", 5, None)),
        ({"household": "a", "interval": 5}, SetupRequest("A", 5, None)),
        ({"household": "C", "interval": "5"}, SetupRequest("C", 5, None)),
        ({"household": "B", "interval": " 15 "}, SetupRequest("B", 15, None)),
        ({"household": "B", "interval": "+30"}, SetupRequest("B", 30, None)),
        ({"household": "B", "interval": 5.0}, SetupRequest("B", 5, None)),
        ({"household": "A", "interval": 1, "start_index": 0}, SetupRequest("A", 1, 0)),
        ({"household": "A", "interval": 86_400, "start_index": 86_399}, SetupRequest("A", 86_400, 86_399)),
        ({"household": "A", "interval": 60, "start_index": "3600"}, SetupRequest("A", 60, 3600)),
        ({"household": "A", "interval": 60, "start_index": 7200.0}, SetupRequest("A", 60, 7200)),
        ({"household": "A", "interval": 60, "start_index": None}, SetupRequest("A", 60, None)),
        ({"household": "A", "interval": 60, "start_index": ""}, SetupRequest("A", 60, None)),
        ({"household": "A", "interval": 5, "other": "ignored"}, SetupRequest("A", 5, None)),
    ],
)
def test_valid_setup(params: dict[str, object], expected: SetupRequest) -> None:
    assert parse_setup(params, KNOWN) == expected


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, REQUIRED),
        ({"household": "A"}, REQUIRED),
        ({"interval": 5}, REQUIRED),
        ({"household": "", "interval": 5}, REQUIRED),
        ({"household": "A", "interval": ""}, REQUIRED),
        ({"household": None, "interval": 5}, REQUIRED),
        ({"household": "A", "interval": None}, REQUIRED),
        ({"household": "A", "interval": 0}, NOT_POSITIVE),
        ({"household": "A", "interval": "0"}, NOT_POSITIVE),
        ({"household": "A", "interval": -5}, NOT_POSITIVE),
        ({"household": "A", "interval": "-5"}, NOT_POSITIVE),
        ({"household": "A", "interval": 86_401}, TOO_LONG),
        ({"household": "A", "interval": 1e20}, TOO_LONG),
        ({"household": "A", "interval": 2.7}, NOT_INTEGERS),
        ({"household": "A", "interval": "2.7"}, NOT_INTEGERS),
        ({"household": "A", "interval": "5s"}, NOT_INTEGERS),
        ({"household": "A", "interval": "1" * 13}, NOT_INTEGERS),
        ({"household": "A", "interval": True}, NOT_INTEGERS),
        ({"household": "A", "interval": False}, NOT_INTEGERS),
        ({"household": "A", "interval": [5]}, NOT_INTEGERS),
        ({"household": "A", "interval": {"s": 5}}, NOT_INTEGERS),
        ({"household": "A", "interval": float("inf")}, NOT_INTEGERS),
        ({"household": "A", "interval": 5, "start_index": 2.5}, NOT_INTEGERS),
        ({"household": "A", "interval": 5, "start_index": True}, NOT_INTEGERS),
        ({"household": "A", "interval": 5, "start_index": [0]}, NOT_INTEGERS),
        ({"household": "A", "interval": 5, "start_index": -1}, BAD_START),
        ({"household": "A", "interval": 5, "start_index": 86_400}, BAD_START),
        ({"household": 5, "interval": 5}, NOT_STRING),
        ({"household": ["A"], "interval": 5}, NOT_STRING),
        ({"household": {"id": "A"}, "interval": 5}, NOT_STRING),
        ({"household": True, "interval": 5}, NOT_STRING),
        ({"household": 5, "interval": 2.7}, NOT_STRING),
        ({"household": "D", "interval": 5}, UNRECOGNIZED),
        ({"household": "AB", "interval": 5}, UNRECOGNIZED),
        ({"household": "A+", "interval": 5}, UNRECOGNIZED),
        ({"household": "+", "interval": 5}, UNRECOGNIZED),
        ({"household": "#", "interval": 5}, UNRECOGNIZED),
        ({"household": "A/B", "interval": 5}, UNRECOGNIZED),
        ({"household": "A\x00", "interval": 5}, UNRECOGNIZED),
        ({"household": "A\n", "interval": 5}, UNRECOGNIZED),
        ({"household": "\x1b[31mA", "interval": 5}, UNRECOGNIZED),
        ({"household": " A", "interval": 5}, UNRECOGNIZED),
        ({"household": "A" * 65, "interval": 5}, UNRECOGNIZED),
    ],
)
def test_setup_errors(params: dict[str, object], message: str) -> None:
    with pytest.raises(RequestError) as info:
        parse_setup(params, KNOWN)
    assert info.value.message == message
    assert info.value.status == 400


def test_household_matching() -> None:
    assert parse_setup({"household": "x" * 64, "interval": 5}, ["x" * 64]).household == "x" * 64
    assert parse_setup({"household": "meter_7", "interval": 5}, ["Meter_7"]).household == "Meter_7"
    assert parse_setup({"household": "m", "interval": 5}, ["m", "M"]).household == "m"
    with pytest.raises(RequestError, match="Unrecognized house"):
        parse_setup({"household": "Mm", "interval": 5}, ["mm", "MM"])  # ambiguous case-insensitively


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"household": "A", "interval": 5}', {"household": "A", "interval": 5}),
        (b"{}", {}),
        (b' \n{"a": [1, {"b": null}]}\n', {"a": [1, {"b": None}]}),
        ('{"h": "\u00e9"}'.encode(), {"h": "\u00e9"}),
    ],
)
def test_parse_json_object(body: bytes, expected: dict[str, object]) -> None:
    assert parse_json_object(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"{'household': 'A'}",
        b"household=A&interval=5",
        b"[]",
        b'[{"household": "A"}]',
        b'"A"',
        b"5",
        b"null",
        b"\xff\xfe",
        b'{"household": "\xe9"}',
        b'{"household": "A", "interval": NaN}',
        b'{"interval": Infinity}',
        b'{"interval": -Infinity}',
        b"[" * 50_000,
    ],
)
def test_parse_json_object_rejects(body: bytes) -> None:
    with pytest.raises(RequestError) as info:
        parse_json_object(body)
    assert info.value.message == NOT_OBJECT
    assert info.value.status == 400


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        ("0", 0),
        ("1704067205", 1_704_067_205),
        (" 42 ", 42),
        ("9" * 10, 10**10 - 1),
    ],
)
def test_parse_event_id(value: str | None, expected: int | None) -> None:
    assert parse_event_id(value) == expected


@pytest.mark.parametrize("value", ["abc", "-1", "+1", "1.5", "1e3", "9" * 11, "9" * 12, "9" * 13, "0x10", "1 2"])
def test_parse_event_id_rejects(value: str) -> None:
    with pytest.raises(RequestError, match="Last-Event-ID"):
        parse_event_id(value)


@pytest.mark.parametrize("value", ["\u00b2", "1\u00b9"])
def test_parse_event_id_rejects_superscript_digits(value: str) -> None:
    with pytest.raises(RequestError, match="Last-Event-ID"):
        parse_event_id(value)
