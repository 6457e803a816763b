"""bridge.http.sse: event framing, retry, comments, JSON window data and the legacy ``<json> status: <json>`` line."""

from __future__ import annotations

import json
import re

import pytest

from bridge.http.sse import RETRY_MS, comment, frame, legacy_data, retry, window_data
from bridge.windows.aggregate import Window

T0 = 1_704_067_200
STATUS = {"AC": "Yellow", "Geyser": "Red", "Overall": "Green"}


def parse_event(raw: bytes) -> dict[str, str]:
    """Parse one event the way a browser does (WHATWG: lines end at CRLF, LF or CR; data lines joined by LF)."""
    assert raw.endswith(b"\n\n")
    fields: dict[str, str] = {}
    data: list[str] = []
    for line in re.split(r"\r\n|\r|\n", raw.decode("utf-8"))[:-2]:
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name:
            fields[name] = value
    fields["data"] = "\n".join(data)
    return fields


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("x",), b"data: x\n\n"),
        (("x", "10"), b"id: 10\ndata: x\n\n"),
        (("x", "10", "window"), b"event: window\nid: 10\ndata: x\n\n"),
        (("x", None, "window"), b"event: window\ndata: x\n\n"),
        (("a\nb\nc",), b"data: a\ndata: b\ndata: c\n\n"),
        (("",), b"data: \n\n"),
        (("x", "1\n2", "a\r\nb"), b"event: a  b\nid: 1 2\ndata: x\n\n"),
        (("caf\u00e9",), "data: caf\u00e9\n\n".encode()),
    ],
)
def test_frame(args: tuple[str, ...], expected: bytes) -> None:
    assert frame(*args) == expected


@pytest.mark.parametrize("data", ["plain", "two\nlines", "crlf\r\nlines", "{}\n\n{}"])
def test_frame_round_trips_through_a_parser(data: str) -> None:
    parsed = parse_event(frame(data, event_id="7", event="window"))
    assert parsed == {"event": "window", "id": "7", "data": data.replace("\r\n", "\n")}


def test_frame_lone_carriage_return() -> None:
    assert parse_event(frame("a\rb")) == {"data": "a\nb"}


def test_retry_and_comment() -> None:
    assert retry() == f"retry: {RETRY_MS}\n\n".encode()
    assert retry(1500) == b"retry: 1500\n\n"
    assert comment("heartbeat 2024-01-01T00:00:00Z") == b": heartbeat 2024-01-01T00:00:00Z\n\n"
    assert comment("a\nb\rc") == b": a b c\n\n"


def window(ac: float | None = 1.5, geyser: float | None = None, overall: float | None = 2.734) -> Window:
    return Window("A", 5, T0, T0 + 5, ac, geyser, overall, 4)


def test_window_data_is_one_line_of_json() -> None:
    data = window_data(window(), STATUS, "Red")
    assert "\n" not in data
    assert json.loads(data) == {
        "household": "A",
        "interval": 5,
        "window_start": "2024-01-01T00:00:00Z",
        "window_end": "2024-01-01T00:00:05Z",
        "AC": 1.5,
        "Geyser": None,
        "Overall": 2.734,
        "samples": 4,
        "status": STATUS,
        "level": "Red",
    }
    assert '"Geyser":null' in data
    assert "NaN" not in data


def test_window_data_never_emits_nan() -> None:
    with pytest.raises(ValueError, match="JSON"):
        window_data(window(ac=float("nan")), STATUS, "Red")


def test_legacy_data() -> None:
    line = legacy_data(window(), STATUS)
    assert line == (
        '{"AC": 1.5, "Geyser": null, "Overall": 2.734} status: {"AC": "Yellow", "Geyser": "Red", "Overall": "Green"}'
    )
    values, status = line.split(" status: ")
    assert json.loads(values) == {"AC": 1.5, "Geyser": None, "Overall": 2.734}
    assert json.loads(status) == STATUS


def test_legacy_data_all_none() -> None:
    values, status = legacy_data(window(None, None, None), dict.fromkeys(STATUS, "Red")).split(" status: ")
    assert json.loads(values) == {"AC": None, "Geyser": None, "Overall": None}
    assert set(json.loads(status).values()) == {"Red"}
