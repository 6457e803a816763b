"""The ``realistic`` profile: AC, geyser and everything else of one meter, composed per local day.

Units: power kW, temperatures deg C. Everything is per local day of the fleet's time zone ``tz``
(``simulator.localday``): sample ``i`` of a day covers ``[start_s + i, start_s + i + 1)``.

Randomness (``simulator.seeds``), keyed by simulated time, never by call order:
- the day's events: ``rng_for(seed, DAY, meter_key, ordinal)``, spawned into three streams (schedule jitter,
  hot-water draws, appliances) so that a warm-up can draw the first two alone;
- per-second measurement noise: ``rng_for(seed, DAY_NOISE, meter_key, ordinal)``, one ``random((3, n))`` per day
  (rows AC, Geyser, everything else); a window of the day advances the generator to its first second instead;
- the fleet's weather: ``rng_for(seed, DAY, (), ordinal)`` (``simulator.profiles.weather``); members' parameters:
  ``rng_for(seed, DIVERSITY, meter_key)`` (``simulator.profiles.diversity``).

State at midnight: a warm-up runs the room and the tank through the whole previous day (its weather, schedule and
draws) from a nominal state (room at its free-running mean, tank at its set-point), so any day can be computed alone,
in any order, with the same result. The price is a small discontinuity at midnight: the previous day's own trace ends
in a state reached from a different start (typically < 0.1 K in the room; the compressor's or element's phase may
differ, so a run can end or begin at midnight).

Noise: each channel is multiplied by ``1 + U(-r, r)`` (zero stays zero, nothing goes negative) and
Overall = noisy AC + noisy Geyser + noisy everything else, so Overall >= AC + Geyser every second.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final, TypeVar
from zoneinfo import ZoneInfo

import numpy as np

from config.localtime import local_date
from config.realistic import DEFAULT_CLIMATE, Climate, HouseholdModel, household_model
from simulator.localday import LocalDay, local_day
from simulator.profiles import aircon, geyser
from simulator.profiles.appliances import other_loads
from simulator.profiles.block import ProfileBlock
from simulator.profiles.diversity import member_model
from simulator.profiles.occupancy import DaySchedule, day_schedule, wall_intervals
from simulator.profiles.signals import Curve, FloatArray, Ramp, Steps, constant, flat_curve
from simulator.profiles.spec import MeterSpec
from simulator.profiles.thermostat import NodeInputs, NodeState, Thermostat, simulate
from simulator.profiles.weather import DayWeather, day_weather, slot_weather
from simulator.seeds import MeterKey, Purpose, rng_for

_CACHE_DAYS: Final = 2  # today and yesterday (a window over midnight; the warm-up of the next day): ~15 kB each
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class DayTrace:
    """One local day of one meter, one value per second (clean physics plus measurement noise on the power)."""

    start_s: int  # epoch seconds of local midnight
    ac_kw: FloatArray
    geyser_kw: FloatArray
    overall_kw: FloatArray
    room_c: FloatArray
    tank_c: FloatArray  # the ambient air for a meter without a geyser
    outdoor_c: FloatArray


@dataclass(frozen=True, slots=True)
class _Inputs:
    """What the thermal models of one day need: drawn from the day's first two streams only."""

    local: LocalDay
    weather: DayWeather
    schedule: DaySchedule
    room: NodeInputs
    tank: NodeInputs | None


@dataclass(frozen=True, slots=True)
class _Day:
    """One day in compact form: step functions and curves, expanded on demand."""

    local: LocalDay
    ac: Steps
    geyser: Steps
    other: Steps
    room: Curve
    tank: Curve
    outdoor: Ramp


def _warm(inputs: NodeInputs, stat: Thermostat, start: NodeState) -> NodeState:
    """State at the end of a day's ``inputs`` run from ``start`` at midnight; its last switch timed from that end."""
    final = simulate(inputs, stat, start, 0).final
    return NodeState(final.temp_c, final.on, final.since_s - inputs.end)


class RealisticProfile:
    """One meter of the realistic profile (a ``MeterProfile``): physics per local day, any window of seconds."""

    __slots__ = ("_days", "_inputs", "meter_key", "model", "seed", "tz")

    def __init__(self, model: HouseholdModel, tz: ZoneInfo, seed: int, meter_key: MeterKey) -> None:
        self.model = model
        self.tz = tz
        self.seed = seed
        self.meter_key = meter_key
        self._inputs: dict[date, _Inputs] = {}
        self._days: dict[date, _Day] = {}  # the last few days in compact form (a few kB each, not dense arrays)

    def _streams(self, day: date) -> list[np.random.Generator]:
        return rng_for(self.seed, Purpose.DAY, self.meter_key, day.toordinal()).spawn(3)

    def _day_inputs(self, day: date) -> _Inputs:
        found = self._inputs.get(day)
        if found is not None:
            return found
        model = self.model
        local = local_day(day, self.tz)
        weather = day_weather(model.climate, local, self.seed)
        schedule_rng, water_rng, _ = self._streams(day)
        schedule = day_schedule(model.schedule, local, schedule_rng)
        lagged = slot_weather(model.climate, local, self.seed, round(model.room.mass_lag_h * 3600))
        room = aircon.room_inputs(model, weather, lagged, schedule)
        tank = None
        if model.geyser is not None:
            timer = None
            if model.geyser.timer_hours is not None:
                timer = wall_intervals(local, [(float(s), float(e)) for s, e in model.geyser.timer_hours])
            draws = geyser.day_draws(model.hot_water, schedule, water_rng)
            tank = geyser.tank_inputs(model.geyser, draws, timer, weather.mean_c, weather.inlet_c, local.n_s)
        found = _Inputs(local, weather, schedule, room, tank)
        _remember(self._inputs, day, found)
        return found

    def _day(self, day: date) -> _Day:
        found = self._days.get(day)
        if found is not None:
            return found
        model = self.model
        today = self._day_inputs(day)
        before = self._day_inputs(day - timedelta(days=1))
        stat = aircon.thermostat(model)
        room0 = _warm(before.room, stat, aircon.nominal_state(model, before.room, 0))
        ac_day = aircon.aircon_day(model, today.room, room0, today.weather, today.schedule)
        if model.geyser is not None and today.tank is not None and before.tank is not None:
            gstat = geyser.thermostat(model.geyser)
            tank0 = _warm(before.tank, gstat, geyser.nominal_state(model.geyser, 0))
            g_day = geyser.geyser_day(model.geyser, today.tank, tank0)
            g_power, tank = g_day.power, g_day.tank
        else:
            g_power, tank = constant(0.0), flat_curve(today.weather.mean_c)
        other = other_loads(model.appliances, today.schedule, today.weather, today.local, self._streams(day)[2])
        found = _Day(today.local, ac_day.power, g_power, other, ac_day.room, tank, today.weather.outdoor)
        _remember(self._days, day, found)
        return found

    def _power(self, part: _Day, a: int, b: int) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Noisy AC, Geyser and Overall of seconds ``a .. b - 1`` of a day."""
        n = part.local.n_s
        ac = part.ac.expand(a, b, n)
        gy = part.geyser.expand(a, b, n)
        other = part.other.expand(a, b, n)
        rng = rng_for(self.seed, Purpose.DAY_NOISE, self.meter_key, part.local.ordinal)
        if a == 0 and b == n:
            u = rng.random((3, n))
        else:
            bits = rng.bit_generator
            if not isinstance(bits, np.random.PCG64):  # pragma: no cover - rng_for always builds PCG64
                raise TypeError("DAY_NOISE needs a PCG64 generator")
            rows = []
            for row in range(3):  # row r, second s is draw r * n + s of the day's stream: one uint64 per double
                bits.advance(a if row == 0 else n - (b - a))
                rows.append(rng.random(b - a))
            u = np.stack(rows)
        r = self.model.noise.relative
        u *= 2.0 * r  # in place: the factor 1 + U(-r, r), without temporaries the size of a day
        u += 1.0 - r
        ac *= u[0]
        gy *= u[1]
        other *= u[2]
        overall = ac + gy
        overall += other
        return ac, gy, overall

    def schedule(self, local_date_: date) -> DaySchedule:
        """The day's presence, comfort windows and hot-water windows (elapsed seconds), for inspection."""
        return self._day_inputs(local_date_).schedule

    def day(self, local_date_: date) -> DayTrace:
        """Every second of one local day (fresh arrays, the caller's to keep or change)."""
        part = self._day(local_date_)
        n = part.local.n_s
        ac, gy, overall = self._power(part, 0, n)
        return DayTrace(
            part.local.start_s,
            ac,
            gy,
            overall,
            part.room.expand(0, n, n),
            part.tank.expand(0, n, n),
            part.outdoor.expand(0, n),
        )

    def block(self, start_s: int, n: int) -> ProfileBlock:
        """Power of seconds ``start_s .. start_s + n - 1``, assembled from the local days they fall in."""
        if n <= 0:
            empty = np.zeros(0, dtype=np.float64)
            return ProfileBlock(start_s, empty, empty.copy(), empty.copy())
        end = start_s + n
        pieces: list[tuple[FloatArray, FloatArray, FloatArray]] = []
        pos = start_s
        while pos < end:
            day = local_date(pos, self.tz)
            local = local_day(day, self.tz)
            if not local.start_s <= pos < local.start_s + local.n_s:  # pragma: no cover - a zone's midnight oddity
                raise ValueError(f"second {pos} is not inside local day {day} of {self.tz.key}")
            a = pos - local.start_s
            b = min(end, local.start_s + local.n_s) - local.start_s
            pieces.append(self._power(self._day(day), a, b))
            pos = local.start_s + b
        if len(pieces) == 1:
            return ProfileBlock(start_s, *pieces[0])
        ac, gy, overall = (np.concatenate([p[i] for p in pieces]) for i in range(3))
        return ProfileBlock(start_s, ac, gy, overall)


def _remember(cache: dict[date, _T], key: date, value: _T) -> None:
    cache[key] = value
    while len(cache) > _CACHE_DAYS:
        del cache[next(iter(cache))]


def realistic_profile(spec: MeterSpec, tz: ZoneInfo, seed: int, climate: Climate = DEFAULT_CLIMATE) -> RealisticProfile:
    """The realistic profile of a meter: its template's nominal model, or a fleet member's drawn diversity."""
    model = household_model(spec.template, climate)
    if len(spec.key) >= 2:
        model = member_model(model, rng_for(seed, Purpose.DIVERSITY, spec.key))
    return RealisticProfile(model, tz, seed, spec.key)
