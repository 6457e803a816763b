"""simulator.profiles.occupancy: circular hour blocks, rotation, presence and comfort windows of a day, sampling in
intervals."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from zoneinfo import ZoneInfo

import numpy as np

from config.realistic import TEMPLATES, Presence
from simulator.localday import local_day
from simulator.profiles.occupancy import circular_blocks, day_schedule, rotation_h, sample_times, wall_intervals

KOLKATA = ZoneInfo("Asia/Kolkata")
MONDAY = date(2024, 6, 3)
SATURDAY = date(2024, 6, 8)


def test_circular_blocks_join_across_midnight() -> None:
    assert circular_blocks(((22, 24), (0, 6), (10, 14))) == [(10.0, 14.0), (22.0, 30.0)]
    assert circular_blocks(((0, 7), (18, 23))) == [(0.0, 7.0), (18.0, 23.0)]
    day = local_day(MONDAY, KOLKATA)
    assert wall_intervals(day, [(22.0, 30.0), (10.0, 14.0)]) == [(0, 21_600), (36_000, 50_400), (79_200, 86_400)]
    assert wall_intervals(day, [(-1.0, 2.0)]) == [(0, 7200), (82_800, 86_400)]


def test_rotation_periods() -> None:
    schedule = replace(TEMPLATES["C"].schedule, rotation_h=(0.0, 8.0, 16.0), rotation_period_days=7)
    ordinal = 7 * 3 * 35_000  # the first day of a rotation cycle
    assert [rotation_h(schedule, ordinal + k) for k in (0, 6, 7, 14, 21)] == [0.0, 0.0, 8.0, 16.0, 0.0]
    assert rotation_h(TEMPLATES["C"].schedule, ordinal + 7) == 0.0  # default: the classic hours every day


def test_day_worker_weekday_and_weekend() -> None:
    schedule = TEMPLATES["A"].schedule
    rng = np.random.default_rng(1)
    monday = day_schedule(schedule, local_day(MONDAY, KOLKATA), rng)
    at = np.array([3, 12, 20], dtype=np.int64) * 3600
    assert monday.presence_at(at).tolist() == [Presence.ASLEEP, Presence.AWAY, Presence.AWAKE]
    saturday = day_schedule(schedule, local_day(SATURDAY, KOLKATA), rng)
    assert saturday.presence_at(np.array([9 * 3600, 16 * 3600])).tolist() == [Presence.AWAKE, Presence.AWAKE]
    assert monday.comfort[0][0] == 0  # a window that starts at midnight is never jittered across it
    assert abs(monday.comfort[0][1] - 7 * 3600) <= 1800
    assert abs(monday.comfort[1][0] - 18 * 3600) <= 1800
    assert monday.hot_water == [(6 * 3600, 8 * 3600), (18 * 3600, 20 * 3600)]


def test_office_closed_at_weekends() -> None:
    schedule = TEMPLATES["B"].schedule
    rng = np.random.default_rng(2)
    saturday = day_schedule(schedule, local_day(SATURDAY, KOLKATA), rng)
    assert saturday.comfort == []
    assert saturday.intervals(Presence.AWAKE) == []
    monday = day_schedule(schedule, local_day(MONDAY, KOLKATA), rng)
    ((start, end),) = monday.intervals(Presence.AWAKE)
    assert abs(start - 9 * 3600) <= 1200
    assert abs(end - 17 * 3600) <= 1200


def test_sample_times_uniform_in_intervals() -> None:
    rng = np.random.default_rng(3)
    times = sample_times([(100, 200), (1000, 1300)], 40_000, rng)
    assert ((times >= 100) & (times < 200) | (times >= 1000) & (times < 1300)).all()
    assert abs(np.mean(times < 200) - 0.25) < 0.01
    assert sample_times([], 5, rng).size == 0
