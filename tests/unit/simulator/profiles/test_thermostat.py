"""simulator.profiles.thermostat: the event-driven node equals a second-by-second reference; protection timers;
crossings."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from simulator.profiles.thermostat import (
    NodeInputs,
    NodeState,
    Thermostat,
    crossing_s,
    flat_inputs,
    on_intervals,
    simulate,
)


def reference(inputs: NodeInputs, stat: Thermostat, state: NodeState) -> tuple[np.ndarray, list[int]]:
    """The same rules checked at every whole second, the exact solution over each second."""
    temp, on, since = state.temp_c, state.on, state.since_s
    temps, switches = [], []
    for t in range(inputs.end):
        k = int(np.searchsorted(inputs.starts, t, side="right")) - 1
        enabled = bool(inputs.enabled[k])
        if on:
            want = not enabled or (temp <= stat.low_c if stat.cooling else temp >= stat.high_c)
            if want and t - since >= stat.min_on_s:
                on, since = False, t
                switches.append(t)
        else:
            want = enabled and (temp >= stat.high_c if stat.cooling else temp <= stat.low_c)
            if want and t - since >= stat.min_off_s:
                on, since = True, t
                switches.append(t)
        temps.append(temp)
        teq = float(inputs.teq_on_c[k] if on else inputs.teq_off_c[k])
        temp = teq + (temp - teq) * math.exp(-1.0 / float(inputs.tau_s[k]))
    return np.array(temps), switches


@pytest.mark.parametrize("trial", range(12))
def test_matches_second_by_second_reference(trial: int) -> None:
    rng = np.random.default_rng(trial)
    n = 15_000
    starts = np.unique(np.concatenate(([0], rng.integers(1, n, 10)))).astype(np.int64)
    m = starts.size
    teq_off = rng.uniform(26, 38, m)
    teq_on = teq_off - rng.uniform(8, 30, m)
    cooling = trial % 2 == 0
    if cooling:
        stat = Thermostat(24.5, 25.5, True, 180, 240)
    else:
        teq_off, teq_on = 60 - teq_off, 60 - teq_on
        stat = Thermostat(30.0, 34.0, False, 60 * (trial % 3), 0)
    inputs = NodeInputs(starts, n, rng.uniform(500, 5000, m), teq_off, teq_on, rng.random(m) < 0.7)
    state = NodeState(27.0, trial % 3 == 0, -50)
    run = simulate(inputs, stat, state, 0)
    temps, switches = reference(inputs, stat, state)
    assert run.switches_s.tolist() == switches
    assert len(switches) >= 4
    assert np.allclose(run.curve.expand(0, n, n), temps, rtol=0, atol=1e-9)


def test_protection_timers_and_disabled_stop() -> None:
    # A strong cooler in a hot room: the band is crossed in seconds, the timers set the rhythm.
    inputs = NodeInputs(
        np.array([0, 3000], dtype=np.int64),
        5000,
        np.array([2000.0, 2000.0]),
        np.array([40.0, 40.0]),
        np.array([-100.0, -100.0]),
        np.array([True, False]),
    )
    run = simulate(inputs, Thermostat(24.5, 25.5, True, 180, 300), NodeState(30.0, False, -1000), 0)
    runs = on_intervals(run)
    assert runs[0][0] == 0
    assert all(b - a >= 180 for a, b in runs)
    assert all(b[0] - a[1] >= 300 for a, b in itertools.pairwise(runs))
    assert runs[-1][1] <= 3000 + 180  # stops once disabled (after at most the minimum run)
    assert all(a < 3000 for a, _ in runs)


def test_runs_from_a_state_before_the_run() -> None:
    inputs = flat_inputs(1000, 1000.0, 40.0, 0.0, True)
    run = simulate(inputs, Thermostat(24.5, 25.5, True, 180, 180), NodeState(24.0, True, -100), 0)
    assert run.switches_s.tolist()[0] == 80  # on since -100: the minimum run ends at 80
    assert run.on_at_begin
    assert on_intervals(run)[0] == (0, 80)


def test_crossing_s() -> None:
    assert crossing_s(30.0, 20.0, 25.0, 100.0) == pytest.approx(100.0 * math.log(2.0))
    assert crossing_s(30.0, 26.0, 25.0, 100.0) == math.inf  # settles above the target
    assert crossing_s(20.0, 30.0, 15.0, 100.0) == math.inf  # moving away
    assert crossing_s(25.0, 0.0, 25.0, 100.0) == 0.0
