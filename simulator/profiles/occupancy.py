"""Who is home, awake or asleep, and when the AC may run and hot water is drawn, on one local day.

Times are elapsed seconds of the local day (``simulator.localday``); intervals are half-open ``[start, end)``. A day's
schedule is its template's hour pattern moved by the household's own shift and the shift rotation, with every change
time jittered (``Schedule.jitter_s``) by the day's generator. Hour blocks that touch across midnight (``[22, 24)`` and
``[0, 6)``) are one block, so their jitter moves one start and one end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from config.households import HourBlock
from config.realistic import Presence, Schedule
from simulator.localday import LocalDay
from simulator.profiles.signals import IntArray, Steps

Interval = tuple[int, int]


def rotation_h(schedule: Schedule, ordinal: int) -> float:
    """The rotation offset (hours) of the shift period containing day ``ordinal``."""
    period = ordinal // schedule.rotation_period_days
    return schedule.rotation_h[period % len(schedule.rotation_h)]


def circular_blocks(blocks: tuple[HourBlock, ...]) -> list[tuple[float, float]]:
    """Blocks on the 24-h circle, those touching across midnight joined (an end may pass 24)."""
    merged = sorted((float(s), float(e)) for s, e in blocks)
    if len(merged) > 1 and merged[0][0] == 0.0 and merged[-1][1] == 24.0:
        first = merged.pop(0)
        last = merged.pop()
        merged.append((last[0], 24.0 + first[1]))
    return merged


def wall_intervals(local: LocalDay, blocks: list[tuple[float, float]]) -> list[Interval]:
    """Elapsed intervals of circular wall-hour blocks (a block passing midnight wraps to the day's start)."""
    out: list[Interval] = []
    for start_h, end_h in blocks:
        length = end_h - start_h
        if length <= 0:
            continue
        if length >= 24:
            return [(0, local.n_s)]
        s = start_h % 24.0
        e = s + length
        if e <= 24.0:
            out.append((local.elapsed_s(s), local.elapsed_s(e)))
        else:
            out.append((local.elapsed_s(s), local.n_s))
            out.append((0, local.elapsed_s(e - 24.0)))
    return sorted((a, b) for a, b in out if b > a)


@dataclass(frozen=True, slots=True)
class DaySchedule:
    """One day of a household: presence per second, comfort windows, hot-water windows, head count."""

    presence: Steps  # Presence values
    comfort: list[Interval]
    hot_water: list[Interval]
    people: int
    n_s: int

    def intervals(self, state: Presence) -> list[Interval]:
        """Maximal intervals with this presence."""
        ends = np.append(self.presence.starts[1:], self.n_s)
        out: list[Interval] = []
        for start, end, value in zip(
            self.presence.starts.tolist(), ends.tolist(), self.presence.values.tolist(), strict=True
        ):
            if value != state:
                continue
            if out and out[-1][1] == start:
                out[-1] = (out[-1][0], end)
            else:
                out.append((start, end))
        return out

    def presence_at(self, elapsed: IntArray) -> IntArray:
        """Presence (as int) at these elapsed seconds."""
        idx = np.searchsorted(self.presence.starts, elapsed, side="right") - 1
        return self.presence.values[idx].astype(np.int64)


def _jitter_h(rng: np.random.Generator, count: int, sd_s: float) -> list[float]:
    jitter: list[float] = (np.clip(rng.standard_normal(count), -2.0, 2.0) * sd_s / 3600.0).tolist()
    return jitter


def _jittered(hour: float, jitter_h: float) -> float:
    """``hour + jitter_h``, never across a midnight, and an edge at midnight stays there: otherwise one day's window
    could begin just before midnight while the next day's begins just after it."""
    day = math.floor(hour / 24.0)
    if hour == 24.0 * day:
        return hour
    return min(max(hour + jitter_h, 24.0 * day), 24.0 * (day + 1))


def day_schedule(schedule: Schedule, local: LocalDay, rng: np.random.Generator) -> DaySchedule:
    """The schedule of ``local``; draws its jitter from ``rng``."""
    shift = schedule.shift_h + rotation_h(schedule, local.ordinal)
    pattern = schedule.weekday if local.weekday else schedule.weekend
    comfort = circular_blocks(schedule.comfort_hours)
    has_comfort = local.weekday or schedule.comfort_on_weekends
    jitter = _jitter_h(rng, len(pattern) + 2 * len(comfort), schedule.jitter_s)
    changes = sorted(((hour + shift + jitter[i]) % 24.0, int(state)) for i, (hour, state) in enumerate(pattern))
    times = [0] + [local.elapsed_s(h) for h, _ in changes]
    states = [changes[-1][1]] + [s for _, s in changes]
    starts: list[int] = []
    values: list[float] = []
    for t, s in zip(times, states, strict=True):
        if t >= local.n_s:
            continue
        if starts and starts[-1] == t:
            values[-1] = float(s)
        else:
            starts.append(t)
            values.append(float(s))
    j = len(pattern)
    comfort_blocks = [
        (_jittered(s + shift, jitter[j + 2 * i]), _jittered(e + shift, jitter[j + 2 * i + 1]))
        for i, (s, e) in enumerate(comfort)
    ]
    hot_blocks = [(s + shift, e + shift) for s, e in circular_blocks(schedule.hot_water_hours)]
    return DaySchedule(
        presence=Steps(np.array(starts, dtype=np.int64), np.array(values, dtype=np.float64)),
        comfort=wall_intervals(local, comfort_blocks) if has_comfort else [],
        hot_water=wall_intervals(local, hot_blocks),
        people=schedule.occupants,
        n_s=local.n_s,
    )


def sample_times(intervals: list[Interval], count: int, rng: np.random.Generator) -> IntArray:
    """``count`` seconds drawn uniformly from the union of ``intervals`` (none if they are empty)."""
    u = rng.random(count)
    lengths = np.array([b - a for a, b in intervals], dtype=np.float64)
    total = float(lengths.sum()) if intervals else 0.0
    if total <= 0:
        return np.zeros(0, dtype=np.int64)
    cum = np.concatenate(([0.0], np.cumsum(lengths)))
    pos = u * total
    k = np.minimum(np.searchsorted(cum, pos, side="right") - 1, len(intervals) - 1)
    firsts = np.array([a for a, _ in intervals], dtype=np.float64)
    return (firsts[k] + (pos - cum[k])).astype(np.int64)
