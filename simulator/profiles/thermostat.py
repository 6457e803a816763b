"""A first-order thermal node under a hysteresis thermostat, simulated event by event.

The node follows ``dT/dt = (teq - T) / tau`` with ``tau`` and ``teq`` constant on each input segment; ``teq`` depends on
whether the device (AC compressor, geyser element) is on. On a segment the exact solution is
``T(t) = teq + (T0 - teq) exp(-(t - t0) / tau)``, so the time at which ``T`` reaches a threshold is
``tau * ln((T0 - teq) / (x - teq))``: the simulation jumps from event to event (segment ends, switches) and never steps
second by second.

Thermostat: a cooler switches on when ``T >= high`` and off when ``T <= low``; a heater switches on when ``T <= low``
and off when ``T >= high``. It may switch on only on enabled segments (comfort hours, heating timer); on a disabled
segment a running device stops. Minimum on and off times hold across all of it. Switching happens on whole seconds:
the thermostat acts at the first whole second at or after the crossing. Times are seconds of the caller's frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from simulator.profiles.signals import Curve, FloatArray, IntArray

BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Thermostat:
    """Switching rule of a device."""

    low_c: float
    high_c: float
    cooling: bool
    min_on_s: int = 0
    min_off_s: int = 0


@dataclass(frozen=True, slots=True)
class NodeInputs:
    """Piecewise-constant inputs: segment ``k`` covers ``[starts[k], starts[k + 1])``, the last one until ``end``."""

    starts: IntArray
    end: int
    tau_s: FloatArray
    teq_off_c: FloatArray
    teq_on_c: FloatArray
    enabled: BoolArray


@dataclass(frozen=True, slots=True)
class NodeState:
    """Temperature, device state and the time of its last switch (may lie before the run)."""

    temp_c: float
    on: bool
    since_s: int


@dataclass(frozen=True, slots=True)
class NodeRun:
    """The result of a run from ``begin``: the temperature curve, switch times and the final state."""

    begin: int
    end: int
    curve: Curve  # starts relative to ``begin``
    on_at_begin: bool
    switches_s: IntArray  # absolute times, alternating from ``on_at_begin``
    final: NodeState


def crossing_s(temp_c: float, teq_c: float, target_c: float, tau_s: float) -> float:
    """Seconds until ``T`` goes from ``temp_c`` to ``target_c`` approaching ``teq_c``; ``inf`` if it never does."""
    if temp_c == target_c:
        return 0.0
    if (temp_c - target_c) * (teq_c - target_c) >= 0.0:
        return math.inf
    return tau_s * math.log((temp_c - teq_c) / (target_c - teq_c))


def simulate(inputs: NodeInputs, stat: Thermostat, state: NodeState, begin: int) -> NodeRun:
    """Run the node from ``begin`` (inside the inputs' span) to ``inputs.end``, starting in ``state``."""
    starts = inputs.starts.tolist()
    taus = inputs.tau_s.tolist()
    teq_off = inputs.teq_off_c.tolist()
    teq_on = inputs.teq_on_c.tolist()
    enabled = inputs.enabled.tolist()
    end = inputs.end
    bounds = [*starts[1:], end]
    k = max(0, int(np.searchsorted(inputs.starts, begin, side="right")) - 1)
    t, temp, on, since = begin, state.temp_c, state.on, state.since_s
    seg_t: list[int] = []
    seg_t0: list[float] = []
    seg_teq: list[float] = []
    seg_inv: list[float] = []
    switches: list[int] = []
    # Thresholds a cooler and a heater wait for: (target when on, target when off).
    off_target, on_target = (stat.low_c, stat.high_c) if stat.cooling else (stat.high_c, stat.low_c)
    while t < end:
        seg_end = bounds[k]
        tau = taus[k]
        teq = teq_on[k] if on else teq_off[k]
        seg_t.append(t)
        seg_t0.append(temp)
        seg_teq.append(teq)
        seg_inv.append(1.0 / tau)
        if on:
            earliest = since + stat.min_on_s
            if not enabled[k]:
                switch_at = max(t, earliest)
            else:
                reached = temp <= off_target if stat.cooling else temp >= off_target
                wait = 0.0 if reached else crossing_s(temp, teq, off_target, tau)
                switch_at = max(t + math.ceil(wait), earliest) if wait < math.inf else end
        elif enabled[k]:
            reached = temp >= on_target if stat.cooling else temp <= on_target
            wait = 0.0 if reached else crossing_s(temp, teq, on_target, tau)
            switch_at = max(t + math.ceil(wait), since + stat.min_off_s) if wait < math.inf else end
        else:
            switch_at = end
        stop = min(switch_at, seg_end)
        temp = teq + (temp - teq) * math.exp(-(stop - t) / tau)
        t = stop
        if switch_at < seg_end:
            on = not on
            since = t
            switches.append(t)
        if t >= seg_end:
            k += 1
    curve = Curve(
        np.asarray(seg_t, dtype=np.int64) - begin,
        np.asarray(seg_t0, dtype=np.float64),
        np.asarray(seg_teq, dtype=np.float64),
        np.asarray(seg_inv, dtype=np.float64),
    )
    return NodeRun(begin, end, curve, state.on, np.asarray(switches, dtype=np.int64), NodeState(temp, on, since))


def on_intervals(run: NodeRun) -> list[tuple[int, int]]:
    """The ``[start, stop)`` intervals (absolute seconds) in which the device runs, cut to the run's span."""
    edges = [run.begin] if run.on_at_begin else []
    edges += run.switches_s.tolist()
    if len(edges) % 2:
        edges.append(run.end)
    return list(zip(edges[::2], edges[1::2], strict=True))


def flat_inputs(n: int, tau_s: float, teq_off: float, teq_on: float, enabled: bool) -> NodeInputs:
    """Constant inputs over ``[0, n)`` (tests and simple callers)."""
    return NodeInputs(
        np.zeros(1, dtype=np.int64),
        n,
        np.array([tau_s]),
        np.array([teq_off]),
        np.array([teq_on]),
        np.array([enabled]),
    )
