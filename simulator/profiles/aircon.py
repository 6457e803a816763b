"""The air conditioner: a room node, a hysteresis thermostat in comfort hours, a compressor with protection timers.

Units: temperatures deg C, power kW (W inside the heat balance), times elapsed seconds of the local day.

Room: ``C dT/dt = UA (T_drive - T) + gains - on * Q_cool``, inputs constant per weather slot. ``T_drive`` is the outdoor
air for the conductance's light share (glass, air leaks) and the lagged, damped sol-air temperature for its heavy share
(walls, roof). Gains: the people present (awake or asleep), their appliances while awake, sun through the windows.
``Q_cool`` is the rated capacity corrected for the outdoor temperature. The thermostat
(``simulator.profiles.thermostat``) switches the compressor only in comfort windows, never before its minimum on and
off times.

Electrical power: the running input (rising with outdoor temperature); ``surge_factor`` times that for the first
``surge_s`` seconds of a run; the indoor fan alone while the compressor rests in a comfort window after its first run
there; 0 otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from config.equipment import Room
from config.realistic import HouseholdModel, Presence
from simulator.profiles.occupancy import DaySchedule, Interval
from simulator.profiles.signals import Curve, FloatArray, IntArray, Steps
from simulator.profiles.thermostat import NodeInputs, NodeRun, NodeState, Thermostat, on_intervals, simulate
from simulator.profiles.weather import DayWeather

T1_C: Final = 35.0  # ISO 5151 T1 rating condition, outdoor dry bulb


@dataclass(frozen=True, slots=True)
class AirconDay:
    """One day of the AC: electrical power, room temperature and the state at the day's end."""

    power: Steps
    room: Curve
    final: NodeState


def thermostat(model: HouseholdModel) -> Thermostat:
    """The AC's switching rule."""
    ac = model.aircon
    half = ac.band_k / 2.0
    return Thermostat(ac.setpoint_c - half, ac.setpoint_c + half, True, ac.min_on_s, ac.min_off_s)


def nominal_state(model: HouseholdModel, inputs: NodeInputs, at_s: int) -> NodeState:
    """A start for a warm-up: the room at its free-running daily mean, compressor off long enough to start at once."""
    free_c = float(np.mean(inputs.teq_off_c))
    return NodeState(max(free_c, model.aircon.setpoint_c), False, at_s - model.aircon.min_off_s)


def _edges(intervals: list[Interval]) -> IntArray:
    return np.array([t for interval in intervals for t in interval], dtype=np.int64)


def _inside(edges: IntArray, t: IntArray) -> np.ndarray[tuple[int], np.dtype[np.bool_]]:
    """Whether each ``t`` lies inside the sorted, disjoint intervals whose flattened edges are ``edges``."""
    inside: np.ndarray[tuple[int], np.dtype[np.bool_]] = np.searchsorted(edges, t, side="right") % 2 == 1
    return inside


def envelope_c(room: Room, weather: DayWeather, lagged: tuple[FloatArray, FloatArray]) -> FloatArray:
    """Per slot, the temperature that drives the room's conductance: air now for the light share, lagged and damped
    sol-air for the heavy share."""
    out_lag, sun_lag = lagged
    sol_air = out_lag + room.sol_air_k * sun_lag
    heavy = weather.mean_c + room.mass_decrement * (sol_air - weather.mean_c)
    return (1.0 - room.mass_share) * weather.outdoor_c + room.mass_share * heavy


def room_inputs(
    model: HouseholdModel, weather: DayWeather, lagged: tuple[FloatArray, FloatArray], schedule: DaySchedule
) -> NodeInputs:
    """Piecewise-constant inputs of the room node over the day (weather slots cut at comfort edges); ``lagged`` is the
    outdoor temperature and sun ``room.mass_lag_h`` earlier (``simulator.profiles.weather.slot_weather``)."""
    room, ac = model.room, model.aircon
    n = schedule.n_s
    comfort = _edges(schedule.comfort)
    starts = np.unique(np.concatenate((weather.slot_starts, comfort[comfort < n])))
    slot = np.searchsorted(weather.slot_starts, starts, side="right") - 1
    t_out = weather.outdoor_c[slot]
    drive = envelope_c(room, weather, lagged)[slot]
    mids = np.minimum(weather.slot_starts + 450, n - 1)
    presence = schedule.presence_at(mids)[slot]
    people = schedule.people
    gains = (
        np.select(
            [presence == Presence.AWAKE, presence == Presence.ASLEEP],
            [people * room.person_awake_w + room.appliance_gain_w, people * room.person_asleep_w],
            0.0,
        )
        + room.solar_gain_w * weather.solar[slot]
    )
    capacity_w = 1000.0 * ac.rated_kw * ac.eer_w_per_w * np.maximum(0.3, 1.0 + ac.capacity_per_k * (t_out - T1_C))
    teq_off = drive + gains / room.ua_w_per_k
    return NodeInputs(
        starts=starts.astype(np.int64),
        end=n,
        tau_s=np.full(starts.size, room.heat_capacity_j_per_k / room.ua_w_per_k),
        teq_off_c=teq_off,
        teq_on_c=teq_off - capacity_w / room.ua_w_per_k,
        enabled=_inside(comfort, starts),
    )


def power_steps(
    model: HouseholdModel, run: NodeRun, start: NodeState, weather: DayWeather, schedule: DaySchedule
) -> Steps:
    """Electrical power (kW) of a day's run that began at elapsed second 0 in state ``start``."""
    ac = model.aircon
    n = schedule.n_s
    runs = on_intervals(run)
    on_edges = _edges(runs)
    # Compressor starts, including the one before midnight of a run still going at 0 (its surge may spill over).
    run_starts = [start.since_s] if start.on else []
    run_starts += [begin for begin, _ in runs if begin > 0 or not start.on]
    surge = _edges([(s, s + ac.surge_s) for s in run_starts])
    # The unit is switched on (indoor fan running between compressor runs) from its first run in a comfort window to the
    # window's end: on a cool day nobody turns it on and it draws nothing.
    fan = _edges(
        [
            (first, c1)
            for c0, c1 in schedule.comfort
            if (first := next((a for a, _ in runs if c0 <= a < c1), None)) is not None
        ]
    )
    cuts = np.concatenate(([0], weather.slot_starts, fan, on_edges, surge))
    starts = np.unique(cuts[(cuts >= 0) & (cuts < n)])
    slot = np.searchsorted(weather.slot_starts, starts, side="right") - 1
    running_kw = ac.rated_kw * np.maximum(0.5, 1.0 + ac.power_per_k * (weather.outdoor_c[slot] - T1_C))
    on = _inside(on_edges, starts)
    surging = _inside(surge, starts) & on
    values = np.where(
        on,
        running_kw * np.where(surging, ac.surge_factor, 1.0),
        np.where(_inside(fan, starts), ac.fan_kw, 0.0),
    )
    return Steps(starts.astype(np.int64), values)


def aircon_day(
    model: HouseholdModel, inputs: NodeInputs, start: NodeState, weather: DayWeather, schedule: DaySchedule
) -> AirconDay:
    """Simulate the day from ``start`` (the state at local midnight)."""
    run = simulate(inputs, thermostat(model), start, 0)
    return AirconDay(power_steps(model, run, start, weather, schedule), run.curve, run.final)
