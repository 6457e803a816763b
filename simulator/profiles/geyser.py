"""The geyser: a fully mixed storage tank, hot-water draws and a thermostat-switched element.

Units: temperatures deg C, flows L/s (1 kg per L), power kW (W inside the heat balance), times elapsed seconds of the
local day.

Tank (EnergyPlus WaterHeater:Mixed): ``C dT/dt = P * on - UA (T - T_amb) - G (T - T_in)``, ``C`` = volume x 4186 J/K,
``G`` = 4186 x the hot-water flow. A draw at the tap asks for ``flow`` L/s at ``use_c``; a thermostatic mix takes the
share ``(use_c - T_in) / (setpoint - T_in)`` from the tank (as the owner set the mixer for a full tank). Draws are
showers and dish-washing inside the household's hot-water hours, and small draws during its waking hours. The element
switches on when the tank falls to ``setpoint - band`` and off at the set-point, only inside the heating timer if any.
The tank stands in air at the day's mean outdoor temperature.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from config.equipment import Geyser, HotWater
from config.realistic import Presence
from simulator.profiles.occupancy import DaySchedule, Interval, sample_times
from simulator.profiles.signals import Curve, FloatArray, IntArray, Steps, steps_from_intervals
from simulator.profiles.thermostat import NodeInputs, NodeState, Thermostat, on_intervals, simulate

WATER_J_PER_KG_K: Final = 4186.0


@dataclass(frozen=True, slots=True)
class Draws:
    """Hot-water draws at the tap: start (elapsed s), duration (s), flow (L/s), temperature at the tap (deg C)."""

    start_s: IntArray
    duration_s: IntArray
    flow_l_per_s: FloatArray
    use_c: FloatArray


@dataclass(frozen=True, slots=True)
class GeyserDay:
    """One day of the geyser: element power, tank temperature, the state at the day's end."""

    power: Steps
    tank: Curve
    final: NodeState


def day_draws(water: HotWater, schedule: DaySchedule, rng: np.random.Generator) -> Draws:
    """The day's draws: showers and dishes in the hot-water hours, small draws while someone is awake."""
    awake = schedule.intervals(Presence.AWAKE)
    kinds = (
        (
            int(rng.binomial(schedule.people, min(water.showers_per_person, 1.0))),
            schedule.hot_water,
            water.shower_s,
            water.shower_flow_l_per_s,
            water.shower_c,
        ),
        (
            int(rng.poisson(water.dishes_per_day)),
            schedule.hot_water,
            water.dish_s,
            water.dish_flow_l_per_s,
            water.dish_c,
        ),
        (int(rng.poisson(water.small_per_day)), awake, water.small_s, water.small_flow_l_per_s, water.small_c),
    )
    starts, durations, flows, temps = [], [], [], []
    for count, windows, duration_s, flow, use_c in kinds:
        times = sample_times(windows, count, rng)
        spread = rng.lognormal(0.0, 0.3, count)[: times.size]  # durations vary about 30 % (log-normal)
        starts.append(times)
        durations.append(np.maximum(1, np.round(duration_s * spread)).astype(np.int64))
        flows.append(np.full(times.size, flow))
        temps.append(np.full(times.size, use_c))
    return Draws(np.concatenate(starts), np.concatenate(durations), np.concatenate(flows), np.concatenate(temps))


def thermostat(geyser: Geyser) -> Thermostat:
    """The element's switching rule."""
    return Thermostat(geyser.setpoint_c - geyser.band_k, geyser.setpoint_c, False)


def nominal_state(geyser: Geyser, at_s: int) -> NodeState:
    """A tank just heated to its set-point."""
    return NodeState(geyser.setpoint_c, False, at_s)


def tank_inputs(
    geyser: Geyser, draws: Draws, timer: list[Interval] | None, ambient_c: float, inlet_c: float, n: int
) -> NodeInputs:
    """Piecewise-constant inputs of the tank over a day of ``n`` seconds."""
    hot_share = np.clip((draws.use_c - inlet_c) / max(geyser.setpoint_c - inlet_c, 1.0), 0.0, 1.0)
    hot = steps_from_intervals(
        [
            (int(s), int(s + d), float(f))
            for s, d, f in zip(draws.start_s, draws.duration_s, draws.flow_l_per_s * hot_share, strict=True)
        ],
        n,
    )
    timer_edges = np.array([t for interval in (timer or []) for t in interval], dtype=np.int64)
    starts = np.unique(np.concatenate((hot.starts, timer_edges[timer_edges < n])))
    flow = hot.values[np.searchsorted(hot.starts, starts, side="right") - 1]
    g = WATER_J_PER_KG_K * flow
    ua = geyser.ua_w_per_k
    teq_off = (ua * ambient_c + g * inlet_c) / (ua + g)
    enabled = (
        np.ones(starts.size, dtype=bool)
        if timer is None
        else np.searchsorted(timer_edges, starts, side="right") % 2 == 1
    )
    return NodeInputs(
        starts=starts.astype(np.int64),
        end=n,
        tau_s=geyser.volume_l * WATER_J_PER_KG_K / (ua + g),
        teq_off_c=teq_off,
        teq_on_c=teq_off + 1000.0 * geyser.element_kw / (ua + g),
        enabled=enabled,
    )


def geyser_day(geyser: Geyser, inputs: NodeInputs, start: NodeState) -> GeyserDay:
    """Simulate the day from ``start`` (the tank at local midnight)."""
    run = simulate(inputs, thermostat(geyser), start, 0)
    power = steps_from_intervals([(a, b, geyser.element_kw) for a, b in on_intervals(run)], inputs.end)
    return GeyserDay(power, run.curve, run.final)
