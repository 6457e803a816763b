"""The AC of the realistic profile: protection timers, cycling, longer runs in the heat, the room held in its band,
start-up surge, nothing on cool days."""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from config.realistic import BRISBANE, household_model
from simulator.profiles.realistic import RealisticProfile, realistic_profile
from simulator.profiles.spec import MeterSpec

KOLKATA = ZoneInfo("Asia/Kolkata")
SEED = 7
KEYS = {"A": 0, "B": 1, "C": 2}
SUMMER = [date(2024, 5, 13) + timedelta(days=9 * k) for k in range(12)]  # Mondays to Fridays and weekends mixed
RUNNING_KW = 0.3  # above the indoor fan (0.04 kW), below any running compressor (>= 0.5 x rated)


def profile(hid: str, member: int | None = None) -> RealisticProfile:
    key = (KEYS[hid],) if member is None else (KEYS[hid], member)
    return realistic_profile(MeterSpec(hid, hid, key), KOLKATA, SEED)


def runs(ac_kw: np.ndarray) -> list[tuple[int, int]]:
    """Compressor runs ``[start, end)`` seen in the per-second power."""
    on = np.concatenate(([False], ac_kw > RUNNING_KW, [False]))
    edges = np.flatnonzero(np.diff(on.astype(np.int8)))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


@pytest.mark.parametrize(("hid", "member"), [("A", None), ("B", None), ("C", None), ("A", 3), ("B", 4), ("C", 5)])
def test_runs_respect_minimum_on_and_off_times(hid: str, member: int | None) -> None:
    p = profile(hid, member)
    ac = p.model.aircon
    count = 0
    for day in SUMMER:
        trace = p.day(day)
        found = runs(trace.ac_kw)
        inner = [(a, b) for a, b in found if a > 0 and b < trace.ac_kw.size]  # runs cut by midnight excluded
        assert all(b - a >= ac.min_on_s for a, b in inner), [(a, b - a) for a, b in inner if b - a < ac.min_on_s]
        gaps = [b[0] - a[1] for a, b in itertools.pairwise(found)]
        assert all(g >= ac.min_off_s for g in gaps)
        count += len(inner)
    assert count >= 8  # the AC did run (an undersized member may run flat out all afternoon: few, long runs)


def test_cycles_in_the_afternoon_heat_with_longer_runs_than_at_night() -> None:
    p = profile("C")  # comfort windows 22-06 and 10-14
    afternoon_runs: list[int] = []
    night_runs: list[int] = []
    for day in SUMMER:
        found = runs(p.day(day).ac_kw)
        afternoon = [b - a for a, b in found if 11 * 3600 <= a < 14 * 3600]  # after the pull-down
        afternoon_runs += afternoon
        night_runs += [b - a for a, b in found if 1 * 3600 <= a < 5 * 3600]
        assert len(afternoon) >= 4  # it cycles: several on/off switches, not one flat block
    assert np.mean(afternoon_runs) > 1.2 * np.mean(night_runs)
    assert 150 < np.mean(night_runs) < 1200
    assert np.mean(afternoon_runs) < 2400


@pytest.mark.parametrize(("hid", "member"), [("A", None), ("C", None), ("A", 2), ("C", 6)])
def test_room_held_in_the_band_in_comfort_hours(hid: str, member: int | None) -> None:
    p = profile(hid, member)
    ac = p.model.aircon
    low, high = ac.setpoint_c - ac.band_k / 2, ac.setpoint_c + ac.band_k / 2
    held = 0
    for day in SUMMER:
        room = p.day(day).room_c
        for c0, c1 in p.schedule(day).comfort:
            window = room[c0:c1]
            reached = np.flatnonzero(window <= high)
            if reached.size == 0:
                continue
            after = window[reached[0] :]  # once pulled down into the band, it stays there
            assert after.max() <= high + 0.05
            assert after.min() >= low - 0.3
            held += after.size
        assert room.max() > high + 2.0  # outside comfort hours the room warms up freely
    assert held > 12 * 8 * 3600  # most comfort hours of these hot days are held


def test_start_up_surge_then_running_power() -> None:
    p = profile("A")
    ac = p.model.aircon
    trace = p.day(SUMMER[0])
    starts = [a for a, _ in runs(trace.ac_kw) if a > 0]
    assert len(starts) > 5
    noise = p.model.noise.relative
    for a in starts:
        running = trace.ac_kw[a + ac.surge_s + 1]
        surge = trace.ac_kw[a : a + ac.surge_s] / running
        ratio_band = ((1 - noise) / (1 + noise), (1 + noise) / (1 - noise))
        assert np.all(surge > ac.surge_factor * ratio_band[0] - 0.05)
        assert np.all(surge < ac.surge_factor * ratio_band[1] + 0.05)
        assert ratio_band[0] - 0.02 < trace.ac_kw[a + ac.surge_s] / running < ratio_band[1] + 0.02


def test_running_power_rises_with_the_heat() -> None:
    p = profile("C")
    day_kw, night_kw = [], []
    for day in SUMMER:
        trace = p.day(day)
        for a, b in runs(trace.ac_kw):
            level = float(np.median(trace.ac_kw[a:b]))
            if 12 * 3600 <= a < 14 * 3600:
                day_kw.append(level)
            elif 2 * 3600 <= a < 5 * 3600:
                night_kw.append(level)
    assert np.mean(day_kw) > 1.04 * np.mean(night_kw)
    assert 1.2 < np.mean(night_kw) < 1.6 < np.mean(day_kw) * 1.1


def test_nobody_runs_the_ac_in_winter() -> None:
    p = RealisticProfile(household_model("A", BRISBANE), ZoneInfo("Australia/Brisbane"), SEED, (0,))
    for k in range(7):
        trace = p.day(date(2024, 7, 8) + timedelta(days=k))  # southern winter
        assert trace.ac_kw.max() == 0.0  # not even the indoor fan
        assert trace.room_c.min() < 20.0
