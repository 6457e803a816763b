"""Everything else on the Overall channel: standby, fridge, lighting, plug loads, desks, kettle, microwave, washer.

Units: power kW, times elapsed seconds of the local day; the result is one step function
(``simulator.profiles.signals``), never below the standby level. All draws come from the generator passed in, in a
fixed order.

- Fridge: compressor runs and rests of random length (+-20 %), run time stretched by a warm kitchen (the day's mean
  outdoor temperature), a random phase at midnight, a start-up surge.
- Lighting: while someone is awake at home and it is dark (from 30 min before sunset to 30 min after sunrise); in an
  office, whenever it is staffed. The lit share changes every 15-45 min (rooms switched on and off): 30-100 % of the
  rated lighting at home, 80-100 % in an office.
- Plug loads (TV, fans, laptop) while someone is awake; office desks from each person's arrival to departure.
- Kettle and microwave: Poisson counts at random waking times; washing machine: heating (hot loads), 12 s / 4 s drum
  tumbling, spin.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from config.equipment import Appliances
from config.realistic import Presence
from simulator.localday import LocalDay
from simulator.profiles.occupancy import DaySchedule, Interval, sample_times
from simulator.profiles.signals import FloatArray, IntArray, Steps, steps_from_changes
from simulator.profiles.weather import DayWeather

Changes = tuple[IntArray, FloatArray]
_DUSK_S: Final = 1800  # lights go on 30 min before sunset and off 30 min after sunrise
_TUMBLE_ON_S: Final = 12
_TUMBLE_PERIOD_S: Final = 16


def _pulses(starts: IntArray, durations: IntArray, levels: FloatArray) -> Changes:
    return np.concatenate((starts, starts + durations)), np.concatenate((levels, -levels))


def _intersect(a: list[Interval], b: list[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for a0, a1 in a:
        for b0, b1 in b:
            lo, hi = max(a0, b0), min(a1, b1)
            if hi > lo:
                out.append((lo, hi))
    return out


def fridge(app: Appliances, mean_c: float, n: int, rng: np.random.Generator) -> Changes:
    """Compressor cycling of the fridge over the day."""
    scale = float(np.clip(1.0 + app.fridge_per_k * (mean_c - 25.0), 0.5, 1.8))
    on_s, off_s = app.fridge_on_s * scale, app.fridge_off_s
    count = int(n / (on_s + off_s)) + 3
    ons = on_s * rng.uniform(0.8, 1.2, count)
    offs = off_s * rng.uniform(0.8, 1.2, count)
    period = ons + offs
    phase = rng.random() * period[0]
    begin = np.round(np.concatenate(([0.0], np.cumsum(period)[:-1])) - phase).astype(np.int64)
    lengths = np.round(ons).astype(np.int64)
    surge = np.full(count, app.fridge_surge_s, dtype=np.int64)
    run_t, run_d = _pulses(begin, lengths, np.full(count, app.fridge_kw))
    surge_t, surge_d = _pulses(begin, surge, np.full(count, app.fridge_kw * (app.fridge_surge_factor - 1.0)))
    return np.concatenate((run_t, surge_t)), np.concatenate((run_d, surge_d))


def varying(
    intervals: list[Interval], level_kw: float, low: float, hold_s: tuple[float, float], rng: np.random.Generator
) -> Changes:
    """A load on ``intervals`` whose level (``level_kw`` x U(low, 1)) changes every U(hold_s) seconds."""
    times: list[IntArray] = []
    deltas: list[FloatArray] = []
    for a, b in intervals:
        count = int((b - a) / hold_s[0]) + 1
        cuts = a + np.cumsum(rng.uniform(hold_s[0], hold_s[1], count)).astype(np.int64)
        begin = np.concatenate(([a], cuts[cuts < b]))
        end = np.append(begin[1:], b)
        levels = level_kw * rng.uniform(low, 1.0, begin.size)
        t, d = _pulses(begin, end - begin, levels)
        times.append(t)
        deltas.append(d)
    if not times:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    return np.concatenate(times), np.concatenate(deltas)


def events(
    windows: list[Interval], per_day: float, level_kw: float, duration_s: float, rng: np.random.Generator
) -> Changes:
    """A Poisson number of runs of about ``duration_s`` (x U(0.7, 1.3)) at random times in ``windows``."""
    starts = sample_times(windows, int(rng.poisson(per_day)), rng)
    durations = np.round(duration_s * rng.uniform(0.7, 1.3, starts.size)).astype(np.int64)
    return _pulses(starts, durations, np.full(starts.size, level_kw))


def desks(app: Appliances, staffed: list[Interval], rng: np.random.Generator) -> Changes:
    """Each desk from its user's arrival (0-40 min after opening) to departure (about closing, sd 30 min)."""
    starts: list[int] = []
    ends: list[int] = []
    for a, b in staffed:
        arrive = a + rng.uniform(-600.0, 2400.0, app.desks)
        leave = b + np.clip(rng.normal(0.0, 1800.0, app.desks), -3600.0, 3600.0)
        starts += arrive.astype(np.int64).tolist()
        ends += np.maximum(leave, arrive + 600.0).astype(np.int64).tolist()
    levels = app.desk_kw * rng.uniform(0.7, 1.3, len(starts))
    begin = np.array(starts, dtype=np.int64)
    return _pulses(begin, np.array(ends, dtype=np.int64) - begin, levels)


def washer(app: Appliances, awake: list[Interval], rng: np.random.Generator) -> Changes:
    """Maybe one washing-machine cycle: heating (hot loads), drum tumbling, spin."""
    wash = rng.random() < app.washer_per_day
    hot = rng.random() < app.washer_hot
    start = sample_times(awake, 1, rng)
    if not wash or start.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    t = int(start[0])
    times: list[IntArray] = []
    deltas: list[FloatArray] = []
    if hot:
        times.append(np.array([t, t + int(app.washer_heat_s)]))
        deltas.append(np.array([app.washer_heat_kw, -app.washer_heat_kw]))
    tumbles = t + np.arange(0, int(app.washer_heat_s + app.washer_wash_s), _TUMBLE_PERIOD_S, dtype=np.int64)
    tumble_t, tumble_d = _pulses(
        tumbles, np.full(tumbles.size, _TUMBLE_ON_S), np.full(tumbles.size, app.washer_motor_kw)
    )
    spin = t + int(app.washer_heat_s + app.washer_wash_s)
    times += [tumble_t, np.array([spin, spin + int(app.washer_spin_s)])]
    deltas += [tumble_d, np.array([app.washer_spin_kw, -app.washer_spin_kw])]
    return np.concatenate(times), np.concatenate(deltas)


def other_loads(
    app: Appliances, schedule: DaySchedule, weather: DayWeather, local: LocalDay, rng: np.random.Generator
) -> Steps:
    """Power (kW) of everything but the AC and the geyser over the day."""
    n = local.n_s
    awake = schedule.intervals(Presence.AWAKE)
    if app.lighting_needs_dark:
        dawn = local.elapsed_s(weather.sunrise_wall_h) + _DUSK_S
        dusk = local.elapsed_s(weather.sunset_wall_h) - _DUSK_S
        lit = _intersect(awake, [(0, min(dawn, n)), (max(dusk, 0), n)])
    else:
        lit = awake
    parts = [
        fridge(app, weather.mean_c, n, rng),
        # Homes light a few rooms at a time (30-100 % of lighting_kw); a staffed office keeps most lights on (80-100 %).
        varying(lit, app.lighting_kw, 0.3 if app.lighting_needs_dark else 0.8, (900.0, 2700.0), rng),
        varying(awake, app.plug_kw, 0.4, (600.0, 2400.0), rng),
        desks(app, awake, rng),
        events(awake, app.kettle_per_day, app.kettle_kw, app.kettle_s, rng),
        events(awake, app.microwave_per_day, app.microwave_kw, app.microwave_s, rng),
        washer(app, awake, rng),
    ]
    times = np.concatenate([p[0] for p in parts]).astype(np.int64)
    deltas = np.concatenate([p[1] for p in parts]).astype(np.float64)
    return steps_from_changes(times, deltas, n, base=app.standby_kw)
