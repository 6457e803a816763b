"""simulator.meters.meter: step() emits one reading per second, seq +1, energy counters are the running sum of
kW/3600."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from simulator.meters.meter import MeterState, step

T0 = 1_704_067_200


def test_first_step() -> None:
    state = MeterState("A", seq=0, next_ts=T0)
    following, reading = step(state, 1.5, 0.0, 2.25)
    assert (reading.meter, reading.seq, reading.ts) == ("A", 0, T0)
    assert (reading.ac_w, reading.geyser_w, reading.overall_w) == (1500.0, 0.0, 2250.0)
    assert reading.ac_kwh == pytest.approx(1.5 / 3600)
    assert reading.geyser_kwh == 0.0
    assert reading.overall_kwh == pytest.approx(2.25 / 3600)
    assert (following.seq, following.next_ts) == (1, T0 + 1)
    assert (following.ac_kwh, following.overall_kwh) == (reading.ac_kwh, reading.overall_kwh)
    assert state.seq == 0  # the old state is untouched (frozen, replaced)


def test_one_hour_at_constant_power_is_kwh() -> None:
    state = MeterState("B", seq=41, next_ts=T0)
    for _ in range(3600):
        state, reading = step(state, 2.0, 0.0, 3.0)
    assert reading.seq == 41 + 3599
    assert reading.ts == T0 + 3599
    assert (state.seq, state.next_ts) == (41 + 3600, T0 + 3600)
    assert reading.ac_kwh == pytest.approx(2.0, rel=1e-9)
    assert reading.overall_kwh == pytest.approx(3.0, rel=1e-9)
    assert reading.geyser_kwh == 0.0


def test_none_power_adds_no_energy_and_is_null() -> None:
    state = MeterState("C", seq=0, next_ts=T0, ac_kwh=1.0, geyser_kwh=2.0, overall_kwh=3.0)
    state, reading = step(state, None, None, None)
    assert (reading.ac_w, reading.geyser_w, reading.overall_w) == (None, None, None)
    assert (reading.ac_kwh, reading.geyser_kwh, reading.overall_kwh) == (1.0, 2.0, 3.0)
    assert state.seq == 1


def test_counters_monotonic_and_equal_to_sum() -> None:
    rng = np.random.default_rng(4)
    powers: list[float | None] = [float(v) for v in rng.uniform(-0.5, 4.0, 500)]
    for i in range(0, 500, 7):
        powers[i] = None
    state = MeterState("A", seq=0, next_ts=T0)
    seqs, counters = [], []
    for power in powers:
        state, reading = step(state, power, 0.0, power)
        seqs.append(reading.seq)
        counters.append(reading.ac_kwh)
        assert reading.overall_kwh == reading.ac_kwh
    assert seqs == list(range(500))
    assert all(b >= a for a, b in itertools.pairwise(counters))
    expected = math.fsum(max(p, 0.0) / 3600 for p in powers if p is not None)
    assert counters[-1] == pytest.approx(expected, rel=1e-12)
