"""simulator.profiles.signals: step functions from changes, exponential curves, ramps; a window equals the day's
slice."""

from __future__ import annotations

import numpy as np

from simulator.profiles.signals import Curve, Ramp, Steps, steps_from_changes, steps_from_intervals


def test_steps_from_changes_sums_and_merges() -> None:
    steps = steps_from_changes(
        np.array([10, 5, 10, -3, 20, 99], dtype=np.int64), np.array([1.0, 2.0, -0.5, 0.25, -2.0, 7.0]), 30, base=0.1
    )
    assert steps.starts.tolist() == [0, 5, 10, 20]
    assert np.allclose(steps.values, [0.35, 2.35, 2.85, 0.85])
    assert np.allclose(
        steps.expand(0, 30, 30)[[0, 4, 5, 9, 10, 19, 20, 29]], [0.35, 0.35, 2.35, 2.35, 2.85, 2.85, 0.85, 0.85]
    )


def test_steps_never_negative_and_intervals() -> None:
    steps = steps_from_intervals([(2, 6, 1.5), (4, 8, 0.5)], 10)
    assert steps.expand(0, 10, 10).tolist() == [0, 0, 1.5, 1.5, 2.0, 2.0, 0.5, 0.5, 0, 0]
    cancel = steps_from_changes(np.array([1, 2], dtype=np.int64), np.array([0.1, -0.1 - 1e-15]), 4)
    assert cancel.values.min() >= 0.0


def test_window_equals_slice() -> None:
    rng = np.random.default_rng(4)
    n = 5000
    starts = np.unique(np.concatenate(([0], rng.integers(1, n, 40)))).astype(np.int64)
    steps = Steps(starts, rng.random(starts.size))
    curve = Curve(
        starts,
        rng.uniform(20, 30, starts.size),
        rng.uniform(0, 60, starts.size),
        1 / rng.uniform(50, 5000, starts.size),
    )
    ramp = Ramp(450.0, 900.0, rng.random(6))
    full_s, full_c, full_r = steps.expand(0, n, n), curve.expand(0, n, n), ramp.expand(0, n)
    for a, b in ((0, 1), (17, 18), (100, 2600), (4999, 5000), (0, n - 1), (1, n)):
        assert np.array_equal(steps.expand(a, b, n), full_s[a:b])
        assert np.array_equal(curve.expand(a, b, n), full_c[a:b])
        assert np.array_equal(ramp.expand(a, b), full_r[a:b])


def test_curve_is_the_exponential_solution() -> None:
    curve = Curve(np.array([0, 100]), np.array([30.0, 20.0]), np.array([10.0, 40.0]), np.array([1 / 50, 1 / 200]))
    values = curve.expand(0, 300, 300)
    assert values[0] == 30.0
    assert np.isclose(values[50], 10 + 20 * np.exp(-1))
    assert values[100] == 20.0
    assert np.isclose(values[299], 40 - 20 * np.exp(-199 / 200))


def test_ramp_interpolates_and_holds() -> None:
    ramp = Ramp(450.0, 900.0, np.array([10.0, 19.0, 1.0]))
    values = ramp.expand(0, 2700)
    assert values[0] == 10.0
    assert values[450] == 10.0
    assert np.isclose(values[900], 14.5)
    assert values[1350] == 19.0
    assert values[2699] == 1.0
