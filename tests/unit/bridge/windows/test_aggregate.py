"""bridge.windows.aggregate: half-open windows aligned to local midnight, short last window, DST days, NaN-skipping
means."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from bridge.windows.aggregate import (
    boundaries,
    local_midnight,
    make_window,
    next_midnight,
    window_end,
    window_means,
    window_start,
)

T0 = 1_704_067_200  # 2024-01-01T00:00:00Z
DAY = 86_400
UTC_ZONE = ZoneInfo("UTC")
KOLKATA = ZoneInfo("Asia/Kolkata")
BERLIN = ZoneInfo("Europe/Berlin")
NAN = np.nan


def midnight(year: int, month: int, day: int, tz: ZoneInfo) -> int:
    return int(datetime(year, month, day, tzinfo=tz).timestamp())


@pytest.mark.parametrize(
    ("ts", "interval", "start"),
    [
        (T0, 5, T0),
        (T0 + 4, 5, T0),
        (T0 + 5, 5, T0 + 5),  # half-open: the end belongs to the next window
        (T0 + 3599, 3600, T0),
        (T0 + DAY - 1, 7, T0 + DAY - 6),  # the short last window [T0+86394, T0+86400)
        (T0 + DAY, 7, T0 + DAY),  # a new day restarts the grid
        (T0 + DAY - 1, DAY, T0),
        (T0 + 100, 1, T0 + 100),
    ],
)
def test_window_start_utc(ts: int, interval: int, start: int) -> None:
    assert window_start(ts, interval, UTC_ZONE) == start


def test_windows_align_to_local_midnight_not_utc() -> None:
    local = midnight(2024, 1, 1, KOLKATA)
    assert local == T0 - 5 * 3600 - 1800
    assert local_midnight(T0, KOLKATA) == local
    assert next_midnight(T0, KOLKATA) == local + DAY
    assert window_start(T0, 3600, KOLKATA) == T0 - 1800
    assert window_start(T0, 900, KOLKATA) == T0


@pytest.mark.parametrize(
    ("start", "interval", "end"),
    [
        (T0, 5, T0 + 5),
        (T0 + DAY - 6, 7, T0 + DAY),
        (T0 + DAY - 13, 7, T0 + DAY - 6),
        (T0, DAY, T0 + DAY),
        (T0 + 3600, DAY, T0 + DAY),
    ],
)
def test_window_end(start: int, interval: int, end: int) -> None:
    assert window_end(start, interval, UTC_ZONE) == end


def test_boundaries_of_a_day_with_seven_second_windows() -> None:
    edges = boundaries(T0, T0 + DAY, 7, UTC_ZONE)
    assert len(edges) == 86_400 // 7 + 2  # 12342 full windows, one short, and the end
    assert edges[0] == T0
    assert edges[-3:].tolist() == [T0 + DAY - 13, T0 + DAY - 6, T0 + DAY]
    assert set(np.diff(edges[:-1]).tolist()) == {7}


@pytest.mark.parametrize(
    ("from_s", "to_s", "interval", "expected"),
    [
        (T0, T0 + 20, 5, [T0, T0 + 5, T0 + 10, T0 + 15, T0 + 20]),
        (T0 + 1, T0 + 20, 5, [T0 + 5, T0 + 10, T0 + 15, T0 + 20]),  # only whole windows
        (T0, T0 + 19, 5, [T0, T0 + 5, T0 + 10, T0 + 15]),
        (T0, T0 + 4, 5, []),
        (T0 + 1, T0 + 9, 5, []),
        (T0 + DAY - 10, T0 + DAY + 14, 7, [T0 + DAY - 6, T0 + DAY, T0 + DAY + 7, T0 + DAY + 14]),
        (T0 + DAY - 6, T0 + DAY - 1, 7, []),  # the short window is not whole yet
    ],
)
def test_boundaries(from_s: int, to_s: int, interval: int, expected: list[int]) -> None:
    edges = boundaries(from_s, to_s, interval, UTC_ZONE)
    assert edges.tolist() == expected
    assert edges.dtype == np.int64


@pytest.mark.parametrize(
    ("day", "next_day", "hours"),
    [((2024, 3, 31), (2024, 4, 1), 23), ((2024, 10, 27), (2024, 10, 28), 25), ((2024, 6, 1), (2024, 6, 2), 24)],
)
def test_dst_days_in_berlin(day: tuple[int, int, int], next_day: tuple[int, int, int], hours: int) -> None:
    start, end = midnight(*day, BERLIN), midnight(*next_day, BERLIN)
    assert end - start == hours * 3600
    assert local_midnight(start + 5 * 3600, BERLIN) == start
    assert next_midnight(start + 5 * 3600, BERLIN) == end
    hourly = boundaries(start, end, 3600, BERLIN)
    assert hourly.tolist() == [start + h * 3600 for h in range(hours + 1)]
    seven = boundaries(start, end, 7, BERLIN)
    assert seven[-1] == end
    assert seven[-2] == end - (end - start) % 7
    assert window_end(int(seven[-2]), 7, BERLIN) == end
    assert window_start(end - 1, 7, BERLIN) == seven[-2]
    assert window_start(end, 7, BERLIN) == end


def test_window_means_skips_nan_and_counts() -> None:
    samples = np.array(
        [
            [1.0, NAN, 2.0],
            [3.0, NAN, 4.0],
            [NAN, NAN, 6.0],
            [5.0, 1.0, NAN],
        ]
    )
    means, counts = window_means(samples, T0, np.array([T0, T0 + 2, T0 + 4]))
    assert np.array_equal(means, np.array([[2.0, NAN, 3.0], [5.0, 1.0, 6.0]]), equal_nan=True)
    assert counts.tolist() == [[2, 0, 2], [1, 1, 1]]


def test_window_means_unequal_windows_and_errors() -> None:
    samples = np.arange(30, dtype=np.float64).reshape(10, 3)
    means, _ = window_means(samples, T0, np.array([T0, T0 + 7, T0 + 10]))
    assert means[:, 0].tolist() == [9.0, 24.0]
    assert window_means(samples, T0, np.array([T0]))[0].shape == (0, 3)
    with pytest.raises(ValueError, match="outside"):
        window_means(samples, T0, np.array([T0 - 1, T0 + 5]))
    with pytest.raises(ValueError, match="outside"):
        window_means(samples, T0, np.array([T0, T0 + 11]))


def test_make_window_rounds_and_gives_none() -> None:
    samples = np.array([[1.0004, NAN, -0.0001], [1.0, NAN, 0.0], [1.0, NAN, 0.0001]])
    window = make_window("A", 3, T0, T0 + 3, samples, 3)
    assert (window.meter, window.interval_s, window.start, window.end, window.samples) == ("A", 3, T0, T0 + 3, 3)
    assert window.values() == {"AC": 1.0, "Geyser": None, "Overall": 0.0}
    assert str(window.overall_kw) == "0.0"  # no negative zero
    rounded = make_window("B", 2, T0, T0 + 2, np.array([[1.23456, 2.0, 0.3333], [1.0, 2.0015, 0.3333]]), 2)
    assert rounded.values() == {"AC": 1.117, "Geyser": 2.001, "Overall": 0.333}
