"""simulator.profiles.classic: classic levels by local hour (UTC, +05:30, DST), Overall bounds, seeds, time-keyed
randomness."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from config.households import CLASSIC
from config.localtime import local_hours
from simulator.profiles.block import BLOCK_S
from simulator.profiles.classic import classic, classic_seconds, day_keyed_uniform, noise_rng

T0 = 1_704_067_200  # 2024-01-01T00:00:00Z, a Monday
UTC_ZONE = ZoneInfo("UTC")
KOLKATA = ZoneInfo("Asia/Kolkata")
BERLIN = ZoneInfo("Europe/Berlin")

# Independent of config.households: level of each appliance for each local hour, from seed-behaviour.md.
AC = {
    "A": [1.5 if h < 7 or 18 <= h < 23 else 0.0 for h in range(24)],
    "B": [2.0 if 9 <= h < 17 else 0.0 for h in range(24)],
    "C": [1.5 if h >= 22 or h < 6 or 10 <= h < 14 else 0.0 for h in range(24)],
}
GEYSER = {
    "A": [3.0 if 6 <= h < 8 or 18 <= h < 20 else 0.0 for h in range(24)],
    "B": [0.0] * 24,
    "C": [3.0 if 5 <= h < 7 or 21 <= h < 23 else 0.0 for h in range(24)],
}


def midnight(year: int, month: int, day: int, tz: ZoneInfo) -> int:
    return int(datetime(year, month, day, tzinfo=tz).timestamp())


@pytest.mark.parametrize("hid", "ABC")
@pytest.mark.parametrize(
    ("tz", "day_start", "utc_day_start"),
    [
        (UTC_ZONE, (2024, 1, 1), datetime(2024, 1, 1, tzinfo=UTC)),
        (KOLKATA, (2024, 1, 1), datetime(2023, 12, 31, 18, 30, tzinfo=UTC)),
    ],
)
def test_levels_each_hour(hid: str, tz: ZoneInfo, day_start: tuple[int, int, int], utc_day_start: datetime) -> None:
    start = midnight(*day_start, tz)
    assert start == int(utc_day_start.timestamp())
    block = classic(CLASSIC[hid], start, 86_400, tz, np.random.default_rng(1))
    assert block.start_s == start
    ac = block.ac_kw.reshape(24, 3600)
    geyser = block.geyser_kw.reshape(24, 3600)
    for hour in range(24):
        assert np.all(ac[hour] == AC[hid][hour]), hour
        assert np.all(geyser[hour] == GEYSER[hid][hour]), hour


def test_kolkata_switches_on_the_half_hour_utc() -> None:
    # A's AC goes off at 07:00 IST = 01:30 UTC.
    block = classic(CLASSIC["A"], T0 + 5400 - 1, 2, KOLKATA, np.random.default_rng(0))
    assert block.ac_kw.tolist() == [1.5, 0.0]
    assert local_hours(np.array([T0 + 5399, T0 + 5400]), KOLKATA).tolist() == [6, 7]


@pytest.mark.parametrize(
    ("day", "next_day", "hours"),
    [
        ((2024, 3, 31), (2024, 4, 1), [0, 1, *range(3, 24)]),  # 23 h: 02:00 does not exist
        ((2024, 10, 27), (2024, 10, 28), [0, 1, 2, 2, *range(3, 24)]),  # 25 h: 02:00-03:00 happens twice
    ],
)
@pytest.mark.parametrize("hid", "ABC")
def test_dst_day_in_berlin(
    day: tuple[int, int, int], next_day: tuple[int, int, int], hours: list[int], hid: str
) -> None:
    start = midnight(*day, BERLIN)
    length = len(hours) * 3600
    assert midnight(*next_day, BERLIN) - start == length
    block = classic(CLASSIC[hid], start, length, BERLIN, np.random.default_rng(2))
    ac = block.ac_kw.reshape(len(hours), 3600)
    geyser = block.geyser_kw.reshape(len(hours), 3600)
    for i, hour in enumerate(hours):
        assert np.all(ac[i] == AC[hid][hour]), (i, hour)
        assert np.all(geyser[i] == GEYSER[hid][hour]), (i, hour)


def test_local_hours_matches_datetime_every_minute_of_a_dst_day() -> None:
    start = midnight(2024, 3, 31, BERLIN) - 7200
    ts = np.arange(start, start + 30 * 3600, 60, dtype=np.int64)
    expected = [datetime.fromtimestamp(int(t), BERLIN).hour for t in ts]
    assert local_hours(ts, BERLIN).tolist() == expected


@pytest.mark.parametrize("days", [1, 3, 30])  # within a few days: every bucket's offset; beyond: the distinct ones
def test_local_hours_of_unsorted_seconds_across_dst_changes(days: int) -> None:
    start = midnight(2024, 3, 30, BERLIN)
    ts = np.random.default_rng(days).permutation(np.arange(start, start + days * 86_400, 37, dtype=np.int64))
    for zone in (BERLIN, KOLKATA, ZoneInfo("America/St_Johns")):
        expected = [datetime.fromtimestamp(int(t), zone).hour for t in ts]
        assert local_hours(ts, zone).tolist() == expected
    assert local_hours(np.zeros(0, dtype=np.int64), BERLIN).tolist() == []


@pytest.mark.parametrize("hid", "ABC")
def test_overall_is_base_plus_appliances_plus_uniform(hid: str) -> None:
    block = classic(CLASSIC[hid], T0, 86_400, UTC_ZONE, np.random.default_rng(3))
    other = block.overall_kw - 0.5 - block.ac_kw - block.geyser_kw
    assert other.min() >= 0.1 - 1e-9
    assert other.max() < 1.0 + 1e-9
    assert other.mean() == pytest.approx(0.55, abs=0.01)
    assert other.std() == pytest.approx(0.9 / np.sqrt(12), abs=0.01)
    expected_mean = 1.05 + np.mean(AC[hid]) + np.mean(GEYSER[hid])
    assert block.overall_kw.mean() == pytest.approx(expected_mean, abs=0.01)


def test_same_seed_same_values_different_seed_different_values() -> None:
    house = CLASSIC["A"]
    first = classic(house, T0, 600, UTC_ZONE, np.random.default_rng(7))
    again = classic(house, T0, 600, UTC_ZONE, np.random.default_rng(7))
    other = classic(house, T0, 600, UTC_ZONE, np.random.default_rng(8))
    assert np.array_equal(first.overall_kw, again.overall_kw)
    assert not np.array_equal(first.overall_kw, other.overall_kw)
    assert np.array_equal(first.ac_kw, other.ac_kw)


def test_classic_seconds_is_keyed_by_time() -> None:
    house = CLASSIC["C"]
    wide = classic_seconds(house, T0 + 30, 200, UTC_ZONE, 11, (2,))
    part = classic_seconds(house, T0 + 100, 50, UTC_ZONE, 11, (2,))
    assert part.start_s == T0 + 100
    assert np.array_equal(part.overall_kw, wide.overall_kw[70:120])
    for offset in (0, 29, 30, 89, 90, 199):
        one = classic_seconds(house, T0 + 30 + offset, 1, UTC_ZONE, 11, (2,))
        assert one.overall_kw[0] == wide.overall_kw[offset]
    assert not np.array_equal(classic_seconds(house, T0 + 30, 200, UTC_ZONE, 12, (2,)).overall_kw, wide.overall_kw)
    assert not np.array_equal(classic_seconds(house, T0 + 30, 200, UTC_ZONE, 11, (0,)).overall_kw, wide.overall_kw)


def test_classic_seconds_over_a_utc_midnight() -> None:
    """Draws of a span across UTC midnight are the end of day d's stream followed by the start of day d+1's."""
    house = CLASSIC["A"]
    day = T0 // 86_400
    span = classic_seconds(house, T0 + 86_400 - 5, 10, UTC_ZONE, 5, (0,))
    before = noise_rng(5, (0,), day).uniform(0.1, 1.0, size=86_400)[-5:]
    after = noise_rng(5, (0,), day + 1).uniform(0.1, 1.0, size=5)
    ac = house.ac_kw  # A runs AC at 00-07 and 18-23: off at 23:59:5x, on from 00:00:00
    assert np.allclose(span.overall_kw[5:], house.base_kw + ac + after)
    assert np.allclose(span.overall_kw[:5], house.base_kw + 0.0 + before)


def test_classic_seconds_over_an_hour_switch() -> None:
    # A's geyser comes on at 06:00 UTC: the 5 s before are 0, the 5 s after 3.0.
    span = classic_seconds(CLASSIC["A"], T0 + 6 * 3600 - 5, 10, UTC_ZONE, 1, (0,))
    assert span.geyser_kw.tolist() == [0.0] * 5 + [3.0] * 5


def test_classic_seconds_zero_length() -> None:
    span = classic_seconds(CLASSIC["A"], T0 + 60, 0, UTC_ZONE, 1, (0,))
    assert len(span.overall_kw) == 0


def test_each_block_has_its_own_draws() -> None:
    span = classic_seconds(CLASSIC["A"], T0, 3 * BLOCK_S, UTC_ZONE, 9, (0,))  # 00:00-00:03 UTC: AC on, geyser off
    blocks = span.overall_kw.reshape(3, BLOCK_S)
    assert not np.array_equal(blocks[0], blocks[1])
    assert not np.array_equal(blocks[1], blocks[2])


def test_noise_rng_is_the_documented_seed_sequence() -> None:
    day = T0 // 86_400
    expected = np.random.Generator(np.random.PCG64(np.random.SeedSequence(9, spawn_key=(0, 2, day)))).random(4)
    assert np.array_equal(noise_rng(9, (2,), day).random(4), expected)
    assert not np.array_equal(noise_rng(9, (2,), day + 1).random(4), expected)


def test_day_keyed_uniform_jumps_exactly() -> None:
    """advance() lands on the same draw as drawing the whole day: any start, any length."""
    day = T0 // 86_400
    whole = noise_rng(3, (1, 7), day).uniform(0.1, 1.0, size=86_400)
    for offset, n in ((0, 1), (1, 59), (12_345, 1000), (86_399, 1)):
        part = day_keyed_uniform(3, (1, 7), day * 86_400 + offset, n, 0.1, 1.0)
        assert np.array_equal(part, whole[offset : offset + n])
