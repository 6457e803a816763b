"""bridge.windows.streams: where a stream starts (start_index, live, resume) and when its next window is final."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bridge.windows.streams import START_SKEW_S, WindowCursor, live_start, resume_start, start_for_index

T0 = 1_704_067_200  # 2024-01-01T00:00:00Z
DAY = 86_400
H = 3600
UTC_ZONE = ZoneInfo("UTC")


def utc(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())  # type: ignore[misc]


@pytest.mark.parametrize(
    ("start_index", "expected"),
    [
        (0, T0),
        (11 * H, T0 + 11 * H),
        (12 * H, T0 + 12 * H),  # exactly now
        (12 * H + 1, T0 + 12 * H + 1),  # slightly in the future: the client's clock is a little ahead
        (12 * H + START_SKEW_S, T0 + 12 * H + START_SKEW_S),
        (12 * H + START_SKEW_S + 1, T0 - DAY + 12 * H + START_SKEW_S + 1),  # too far ahead: yesterday's
        (86_399, T0 - 1),
    ],
)
def test_start_for_index_utc(start_index: int, expected: int) -> None:
    assert start_for_index(start_index, T0 + 12 * H, UTC_ZONE) == expected


@pytest.mark.parametrize(
    ("start_index", "reference", "tz", "expected"),
    [
        # 00:00Z is 05:30 IST: 01:00 IST today is 19:30Z the day before; 06:00 IST today is 00:30Z, yesterday's.
        (H, T0, "Asia/Kolkata", utc(2023, 12, 31, 19, 30)),
        (6 * H, T0, "Asia/Kolkata", utc(2023, 12, 31, 0, 30)),
        # Berlin, spring-forward day: start_index is local clock time.
        (3 * H, utc(2024, 3, 31, 12), "Europe/Berlin", utc(2024, 3, 31, 1)),
        (13 * H, utc(2024, 3, 31, 12), "Europe/Berlin", utc(2024, 3, 31, 11)),
        # The day after: 12:00 local is ahead of 02:30 local, so it is yesterday's (the 23 h day).
        (12 * H, utc(2024, 4, 1, 0, 30), "Europe/Berlin", utc(2024, 3, 31, 10)),
        # Fall-back day: 12:00 CET is 11:00Z.
        (12 * H, utc(2024, 10, 27, 15), "Europe/Berlin", utc(2024, 10, 27, 11)),
    ],
)
def test_start_for_index_zones(start_index: int, reference: int, tz: str, expected: int) -> None:
    assert start_for_index(start_index, reference, ZoneInfo(tz)) == expected


def test_start_for_index_skew_across_midnight() -> None:
    # Meter at 23:58, the client's clock 3 minutes ahead says 00:01: that is the coming 00:01, not yesterday's.
    assert start_for_index(60, T0 + DAY - 120, UTC_ZONE) == T0 + DAY + 60


@pytest.mark.parametrize(
    ("watermark", "interval", "grace", "expected"),
    [
        (T0 + 11, 5, 1, T0 + 5),  # [T0+5, T0+10) is final at watermark 11
        (T0 + 12, 5, 1, T0 + 5),
        (T0 + 15, 5, 1, T0 + 5),
        (T0 + 16, 5, 1, T0 + 10),
        (T0 + 10, 5, 0, T0 + 5),
        (T0 + DAY + 1, 7, 1, T0 + DAY - 6),  # the short last window of the day
        (T0 + DAY + 8, 7, 1, T0 + DAY),
    ],
)
def test_live_start(watermark: int, interval: int, grace: int, expected: int) -> None:
    assert live_start(watermark, interval, grace, UTC_ZONE) == expected


@pytest.mark.parametrize(
    ("last_id", "interval", "expected"),
    [
        (T0 + 10, 5, T0 + 10),
        (T0 + 12, 5, T0 + 15),
        (T0 + DAY, 7, T0 + DAY),
        (T0 + DAY - 6, 7, T0 + DAY - 6),
        (T0 + DAY - 3, 7, T0 + DAY),
    ],
)
def test_resume_start(last_id: int, interval: int, expected: int) -> None:
    assert resume_start(last_id, interval, UTC_ZONE) == expected


def test_cursor_live() -> None:
    cursor = WindowCursor(5, 1, UTC_ZONE)
    assert cursor.due(T0 + 100) is None  # not resolved yet
    cursor.advance()
    assert cursor.start is None
    cursor.resolve(T0 + 12, T0)
    assert cursor.start == T0 + 5
    cursor.resolve(T0 + 500, T0)  # resolving again changes nothing
    assert cursor.start == T0 + 5
    assert cursor.due(None) is None
    assert cursor.due(T0 + 10) is None
    assert cursor.due(T0 + 11) == (T0 + 5, T0 + 10)
    cursor.advance()
    assert cursor.due(T0 + 15) is None
    assert cursor.due(T0 + 16) == (T0 + 10, T0 + 15)


@pytest.mark.parametrize(
    ("start_index", "first_ts", "expected_start"),
    [
        (H, T0, T0 + H),
        (H + 59, T0, T0 + H),  # aligned down to its window
        (H, None, T0 + H),
        (0, T0 + 1000, T0 + 960),  # never before the oldest second held
        (H, T0 + 2 * H, T0 + 2 * H),
    ],
)
def test_cursor_start_index(start_index: int, first_ts: int | None, expected_start: int) -> None:
    cursor = WindowCursor(60, 2, UTC_ZONE, start_index=start_index)
    cursor.resolve(T0 + 3 * H, first_ts)
    assert cursor.start == expected_start
    assert cursor.due(expected_start + 61) is None
    assert cursor.due(expected_start + 62) == (expected_start, expected_start + 60)


def test_cursor_crosses_midnight_with_a_short_window() -> None:
    cursor = WindowCursor(7, 0, UTC_ZONE, start=T0 + DAY - 13)
    assert cursor.due(T0 + DAY) == (T0 + DAY - 13, T0 + DAY - 6)
    cursor.advance()
    assert cursor.due(T0 + DAY - 1) is None
    assert cursor.due(T0 + DAY) == (T0 + DAY - 6, T0 + DAY)
    cursor.advance()
    assert cursor.due(T0 + DAY + 7) == (T0 + DAY, T0 + DAY + 7)
