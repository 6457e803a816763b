"""simulator.live.clock: SimClock maps wall <-> simulated time at any speed; start_epoch honours the zone and DST."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from simulator.live.clock import SimClock, start_epoch

T0 = 1_704_067_200  # 2024-01-01T00:00:00Z


def utc(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()  # type: ignore[misc]


@pytest.mark.parametrize(
    ("speed", "wall", "sim"),
    [
        (1.0, 100.0, T0),
        (1.0, 101.5, T0 + 1.5),
        (60.0, 101.0, T0 + 60),
        (60.0, 99.0, T0 - 60),
        (0.5, 104.0, T0 + 2),
        (3600.0, 124.0, T0 + 86_400),
    ],
)
def test_mapping_both_ways(speed: float, wall: float, sim: float) -> None:
    clock = SimClock(wall_origin=100.0, sim_origin=T0, speed=speed)
    assert clock.sim_at(wall) == pytest.approx(sim, abs=1e-6)
    assert clock.wall_at(sim) == pytest.approx(wall, abs=1e-9)
    assert clock.wall_at(clock.sim_at(wall)) == pytest.approx(wall, abs=1e-9)


def test_default_speed_is_real_time() -> None:
    assert SimClock(5.0, 10.0).sim_at(7.0) == 12.0


@pytest.mark.parametrize("speed", [0.0, -1.0, float("nan")])
def test_speed_must_be_positive(speed: float) -> None:
    with pytest.raises(ValueError, match="speed"):
        SimClock(0.0, 0.0, speed)


@pytest.mark.parametrize(
    ("now", "tz", "start_s", "expected"),
    [
        (utc(2024, 1, 1, 15), "UTC", None, utc(2024, 1, 1, 15)),
        (utc(2024, 1, 1, 15), "UTC", 7 * 3600, utc(2024, 1, 1, 7)),
        (utc(2024, 1, 1, 15), "UTC", 23 * 3600 + 59 * 60 + 59, utc(2024, 1, 1, 23, 59, 59)),
        (utc(2024, 1, 1, 15), "UTC", 0, utc(2024, 1, 1)),
        # 20:00Z is 01:30 IST on Jan 2: "today" is Jan 2 in Kolkata, whose midnight is 18:30Z on Jan 1.
        (utc(2024, 1, 1, 20), "Asia/Kolkata", 3600, utc(2024, 1, 1, 19, 30)),
        (utc(2024, 1, 1, 12), "Asia/Kolkata", 3600, utc(2023, 12, 31, 19, 30)),
        # DST in Berlin: HH:MM:SS means local clock time, not seconds elapsed since midnight.
        (utc(2024, 3, 31, 12), "Europe/Berlin", 1 * 3600, utc(2024, 3, 31, 0)),
        (utc(2024, 3, 31, 12), "Europe/Berlin", 3 * 3600, utc(2024, 3, 31, 1)),
        (utc(2024, 3, 31, 12), "Europe/Berlin", 12 * 3600, utc(2024, 3, 31, 10)),
        (utc(2024, 10, 27, 12), "Europe/Berlin", 12 * 3600, utc(2024, 10, 27, 11)),
        (utc(2024, 10, 27, 12), "Europe/Berlin", 1 * 3600, utc(2024, 10, 26, 23)),
    ],
)
def test_start_epoch(now: float, tz: str, start_s: int | None, expected: float) -> None:
    assert start_epoch(now, ZoneInfo(tz), start_s) == expected
