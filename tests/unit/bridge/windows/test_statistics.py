"""bridge.windows.statistics: percentiles, fitted critical value, filtering, colour rules, stats_document."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bridge.windows.statistics import (
    GREEN,
    MIN_WINDOWS,
    RED,
    YELLOW,
    Z_99,
    ChannelStats,
    channel_stats,
    colour,
    level,
    quick_stats,
    stats_document,
)

STATS = ChannelStats(p25=1.0, median=2.0, p75=3.0, best_distribution="norm", critical=5.0, windows=100)


def test_percentiles() -> None:
    stats = channel_stats(np.arange(0.0, 101.0))
    assert (stats.p25, stats.median, stats.p75) == (25.0, 50.0, 75.0)
    assert stats.windows == 101


@pytest.mark.parametrize("value", [0.0, 1.5, 3.0])
def test_constant_channel(value: float) -> None:
    stats = channel_stats(np.full(50, value))
    assert (stats.p25, stats.median, stats.p75, stats.critical) == (value, value, value, value)
    assert stats.critical is not None
    assert stats.best_distribution == "norm"


def test_normal_data_is_norm() -> None:
    x = np.random.default_rng(1).normal(10.0, 1.0, 5000)
    stats = channel_stats(x)
    assert stats.best_distribution == "norm"
    assert stats.critical == pytest.approx(float(np.mean(x) + Z_99 * np.std(x)))
    assert stats.critical == pytest.approx(12.33, abs=0.1)


def test_exponential_data_is_expon() -> None:
    x = np.random.default_rng(2).exponential(2.0, 5000)
    stats = channel_stats(x)
    assert stats.best_distribution == "expon"
    low = float(np.min(x))
    assert stats.critical == pytest.approx(low + (float(np.mean(x)) - low) * math.log(100.0))
    assert stats.critical == pytest.approx(2.0 * math.log(100.0), rel=0.05)


def test_nan_and_negative_windows_are_filtered() -> None:
    clean = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    dirty = np.array([np.nan, 1.0, -3.0, 2.0, 3.0, np.nan, -0.001, 4.0, 5.0])
    assert channel_stats(dirty) == channel_stats(clean)
    assert channel_stats(dirty).windows == 5


def test_nothing_left_after_filtering() -> None:
    stats = channel_stats(np.array([np.nan, -1.0]))
    assert stats == ChannelStats(0.0, 0.0, 0.0, "norm", 0.0, 0)


@pytest.mark.parametrize(
    "values",
    [
        # The office's Overall: 16 h near 1.55 kW, 8 h near 3.55 kW (the original's critical came out below its p75).
        np.concatenate([np.full(16 * 12, 1.55), np.full(8 * 12, 3.55)]),
        np.concatenate([np.zeros(90), np.full(10, 100.0)]),
        np.concatenate([np.zeros(70), np.full(30, 3.0)]),
        np.random.default_rng(3).uniform(0, 1, 40),
        np.array([0.0, 0.0, 0.0, 1.0]),
    ],
)
def test_critical_never_below_p75(values: np.ndarray) -> None:
    stats = channel_stats(values)
    assert stats.critical >= stats.p75
    assert math.isfinite(stats.critical)


@pytest.mark.parametrize(
    ("value", "warming_up", "expected"),
    [
        (None, False, RED),
        (None, True, RED),
        (-0.001, False, RED),
        (-5.0, True, RED),
        (0.0, False, GREEN),
        (2.0, False, GREEN),
        (3.0, False, GREEN),  # at p75: still Green
        (3.001, False, YELLOW),
        (4.999, False, YELLOW),
        (5.0, False, RED),  # at the critical value: Red
        (50.0, False, RED),
        (3.5, True, GREEN),  # warming up: nothing is an outlier yet
        (50.0, True, GREEN),
    ],
)
def test_colour(value: float | None, warming_up: bool, expected: str) -> None:
    assert colour(value, STATS, warming_up) == expected


def test_colour_without_stats() -> None:
    assert colour(9.0, None, False) == GREEN
    assert colour(None, None, False) == RED


def test_colour_of_constant_channel() -> None:
    flat = channel_stats(np.zeros(20))
    assert colour(0.0, flat, False) == GREEN
    assert colour(0.001, flat, False) == RED


@pytest.mark.parametrize(
    ("colours", "expected"),
    [
        ({"AC": GREEN, "Geyser": GREEN, "Overall": GREEN}, GREEN),
        ({"AC": GREEN, "Geyser": YELLOW, "Overall": GREEN}, YELLOW),
        ({"AC": YELLOW, "Geyser": RED, "Overall": GREEN}, RED),
        ({}, GREEN),
    ],
)
def test_level(colours: dict[str, str], expected: str) -> None:
    assert level(colours) == expected


def walk(node: object) -> list[object]:
    if isinstance(node, dict):
        return [leaf for value in node.values() for leaf in walk(value)]
    return [node]


def test_stats_document() -> None:
    rng = np.random.default_rng(5)
    means = np.column_stack([np.full(30, 1.5), np.zeros(30), rng.normal(2.5, 0.2, 30)])
    means[3, 2] = np.nan
    means[4, 0] = -1.0
    doc = stats_document(quick_stats(means, samples=150))
    assert list(doc) == [
        "25p",
        "75p",
        "best_distribution",
        "median",
        "rt_critical_value_0.01",
        "samples",
        "warming_up",
        "window_count",
    ]
    for key in ("25p", "75p", "best_distribution", "median", "rt_critical_value_0.01"):
        assert list(doc[key]) == ["AC", "Geyser", "Overall"]  # type: ignore[call-overload]
    assert doc["rt_critical_value_0.01"]["AC"] == 1.5  # type: ignore[index]
    assert doc["rt_critical_value_0.01"]["Geyser"] == 0.0  # type: ignore[index]
    assert doc["median"]["Overall"] == round(float(np.nanmedian(means[:, 2])), 3)  # type: ignore[index]
    assert (doc["samples"], doc["window_count"], doc["warming_up"]) == (150, 30, False)
    leaves = walk(doc)
    assert None not in leaves
    assert all(not isinstance(v, float) or (math.isfinite(v) and v == round(v, 3)) for v in leaves)


def test_warming_up() -> None:
    assert quick_stats(np.ones((MIN_WINDOWS - 1, 3)), 0).warming_up
    assert not quick_stats(np.ones((MIN_WINDOWS, 3)), 0).warming_up


def test_vectorised_erf_matches_math_erf() -> None:
    import math as _math

    from bridge.windows.statistics import _erf

    z = np.linspace(-6, 6, 20_001)
    assert np.max(np.abs(_erf(z) - np.array([_math.erf(v) for v in z]))) < 2e-7
