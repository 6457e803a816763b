"""Quick statistics and colours: what counts as normal for a household's interval averages.

Pure. Inputs are interval-averaged windows (kW) per channel, never raw seconds: the percentiles and the critical value
describe the same thing the stream shows. Error-filtered: windows with no value or a negative mean are left out.

Per channel: the 25th, 50th and 75th percentiles, the better of a normal or an exponential fit (smaller
Kolmogorov-Smirnov distance) and its right-tail critical value at 1% (its 99th percentile). The critical value is never
below the 75th percentile, and a constant channel gets the constant (never null).

Colours (documented in the README): no value or below 0 -> Red; above the 75th percentile and at or above the critical
value -> Red; above the 75th percentile -> Yellow; else Green. While fewer than ``MIN_WINDOWS`` windows are known, only
the first rule applies (no baseline yet to call anything an outlier).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from bridge.windows.aggregate import CHANNELS

FloatArray = npt.NDArray[np.float64]

MIN_WINDOWS: Final = 12
Z_99: Final = 2.3263478740408408  # standard normal 99th percentile
GREEN: Final = "Green"
YELLOW: Final = "Yellow"
RED: Final = "Red"
_RANK: Final = {GREEN: 0, YELLOW: 1, RED: 2}


@dataclass(frozen=True, slots=True)
class ChannelStats:
    """Baseline of one channel, kW."""

    p25: float
    median: float
    p75: float
    best_distribution: str
    critical: float
    windows: int


@dataclass(frozen=True, slots=True)
class QuickStats:
    """Baseline of every channel of one (household, interval)."""

    channels: dict[str, ChannelStats]
    window_count: int
    samples: int

    @property
    def warming_up(self) -> bool:
        """Too few windows for the baseline to flag outliers."""
        return self.window_count < MIN_WINDOWS


def _erf(z: FloatArray) -> FloatArray:
    """erf, vectorised: Abramowitz and Stegun 7.1.26 (absolute error < 1.5e-7, far below what a KS distance needs)."""
    t = 1.0 / (1.0 + 0.3275911 * np.abs(z))
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return np.asarray(np.sign(z) * (1.0 - poly * np.exp(-z * z)), dtype=np.float64)


def _norm_cdf(x: FloatArray, mu: float, sigma: float) -> FloatArray:
    return np.asarray(0.5 * (1.0 + _erf((x - mu) / (sigma * math.sqrt(2.0)))), dtype=np.float64)


def _ks_distance(sorted_x: FloatArray, cdf: FloatArray) -> float:
    n = len(sorted_x)
    upper = np.arange(1, n + 1) / n
    lower = np.arange(0, n) / n
    return float(max(np.max(upper - cdf), np.max(cdf - lower)))


def channel_stats(values: FloatArray) -> ChannelStats:
    """Baseline of one channel's window means (NaN and negative windows are dropped first)."""
    x = np.sort(values[~np.isnan(values) & (values >= 0)])
    if len(x) == 0:
        return ChannelStats(0.0, 0.0, 0.0, "norm", 0.0, 0)
    p25, median, p75 = (float(v) for v in np.percentile(x, [25, 50, 75]))
    mu, sigma = float(np.mean(x)), float(np.std(x))
    low, scale = float(x[0]), float(np.mean(x)) - float(x[0])
    if sigma <= 1e-12 or scale <= 1e-12:
        best, critical = "norm", mu
    else:
        norm_d = _ks_distance(x, _norm_cdf(x, mu, sigma))
        expon_d = _ks_distance(x, 1.0 - np.exp(-(x - low) / scale))
        if expon_d < norm_d:
            best, critical = "expon", low + scale * math.log(100.0)
        else:
            best, critical = "norm", mu + Z_99 * sigma
    return ChannelStats(p25, median, p75, best, max(critical, p75), len(x))


def quick_stats(window_means: FloatArray, samples: int) -> QuickStats:
    """Baseline of every channel from window means of shape ``(windows, 3)``."""
    channels = {name: channel_stats(window_means[:, i]) for i, name in enumerate(CHANNELS)}
    return QuickStats(channels, int(window_means.shape[0]), samples)


def colour(value: float | None, stats: ChannelStats | None, warming_up: bool) -> str:
    """Colour word of one window value against its channel's baseline."""
    if value is None or value < 0:
        return RED
    if stats is None or warming_up or value <= stats.p75:
        return GREEN
    return RED if value >= stats.critical else YELLOW


def window_colours(values: Mapping[str, float | None], stats: QuickStats | None) -> dict[str, str]:
    """Colour of each channel's window value (kW) against the baseline; without one, only the no-value rule applies."""
    warming_up = stats is None or stats.warming_up
    return {
        name: colour(value, None if stats is None else stats.channels[name], warming_up)
        for name, value in values.items()
    }


def level(colours: dict[str, str]) -> str:
    """The worst of several colours."""
    return max(colours.values(), key=_RANK.__getitem__, default=GREEN)


def _r(value: float) -> float:
    return round(value, 3) + 0.0


def stats_document(stats: QuickStats) -> dict[str, object]:
    """The original ``/stream_qstats`` shape (keys sorted, 3 decimals) with ``samples`` and ``window_count`` added."""
    doc: dict[str, object] = {
        "25p": {name: _r(c.p25) for name, c in stats.channels.items()},
        "75p": {name: _r(c.p75) for name, c in stats.channels.items()},
        "best_distribution": {name: c.best_distribution for name, c in stats.channels.items()},
        "median": {name: _r(c.median) for name, c in stats.channels.items()},
        "rt_critical_value_0.01": {name: _r(c.critical) for name, c in stats.channels.items()},
        "samples": stats.samples,
        "warming_up": stats.warming_up,
        "window_count": stats.window_count,
    }
    return doc
