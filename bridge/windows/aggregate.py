"""Window aggregation by event time.

Windows are half-open ``[start, start + interval)`` in simulated epoch seconds, aligned to local midnight of the fleet's
time zone; the last window of a day ends at the next midnight (so it is shorter when ``interval`` does not divide the
day). A window's value per channel is the mean, in kW, of the seconds that have a value (missing seconds and ``null``
samples are skipped), rounded to 3 decimals as the original did; ``None`` if no second has a value.

Pure: no clock, no I/O. Samples are a float array of shape ``(n, 3)`` (AC, Geyser, Overall in kW; NaN = no value) for
the seconds ``start_s .. start_s + n - 1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from config.localtime import local_date, midnight_s

CHANNELS: Final = ("AC", "Geyser", "Overall")
DECIMALS: Final = 3

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def local_midnight(ts: int, tz: ZoneInfo) -> int:
    """Epoch seconds of the local midnight that starts the day containing ``ts``."""
    midnight = midnight_s(local_date(ts, tz), tz)
    return midnight if midnight <= ts else midnight - 86_400  # a zone whose midnight does not exist that day


def next_midnight(ts: int, tz: ZoneInfo) -> int:
    """Epoch seconds of the local midnight that ends the day containing ``ts``."""
    return midnight_s(local_date(ts, tz) + timedelta(days=1), tz)


def window_start(ts: int, interval_s: int, tz: ZoneInfo) -> int:
    """Start of the window containing second ``ts``."""
    midnight = local_midnight(ts, tz)
    return midnight + (ts - midnight) // interval_s * interval_s


def window_end(start: int, interval_s: int, tz: ZoneInfo) -> int:
    """End (exclusive) of the window starting at ``start``: ``start + interval`` or the next midnight, if earlier."""
    return min(start + interval_s, next_midnight(start, tz))


def boundaries(from_s: int, to_s: int, interval_s: int, tz: ZoneInfo) -> IntArray:
    """Starts of the whole windows inside ``[from_s, to_s)``, followed by the end of the last one (empty if none)."""
    edges: list[int] = []
    start = window_start(from_s, interval_s, tz)
    if start < from_s:
        start = window_end(start, interval_s, tz)
    while start < to_s:
        day_end = next_midnight(start, tz)
        full = (min(day_end, to_s) - start) // interval_s
        edges.extend(range(start, start + full * interval_s, interval_s))
        start += full * interval_s
        if start >= day_end:
            continue
        if day_end > to_s:
            break
        edges.append(start)  # the short window that ends at midnight
        start = day_end
    if not edges:
        return np.zeros(0, dtype=np.int64)
    return np.array([*edges, start], dtype=np.int64)


def window_means(samples: FloatArray, start_s: int, edges: IntArray) -> tuple[FloatArray, IntArray]:
    """Per-window mean (NaN if no value) and count of valid seconds, per channel, for windows between ``edges``."""
    if len(edges) < 2:
        return np.zeros((0, samples.shape[1])), np.zeros((0, samples.shape[1]), dtype=np.int64)
    offsets = edges - start_s
    if offsets[0] < 0 or offsets[-1] > len(samples):
        raise ValueError("edges outside the samples")
    valid = ~np.isnan(samples)
    filled = np.where(valid, samples, 0.0)
    # Cumulative sums make every window O(1) and handle windows of unequal length.
    zero = np.zeros((1, samples.shape[1]))
    sums = np.concatenate([zero, np.cumsum(filled, axis=0)])
    counts = np.concatenate([zero.astype(np.int64), np.cumsum(valid, axis=0, dtype=np.int64)])
    window_sums = sums[offsets[1:]] - sums[offsets[:-1]]
    window_counts = counts[offsets[1:]] - counts[offsets[:-1]]
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(window_counts > 0, window_sums / np.maximum(window_counts, 1), np.nan)
    return means.astype(np.float64), window_counts.astype(np.int64)


@dataclass(frozen=True, slots=True)
class Window:
    """One finished window of one meter: mean kW per channel (None = no value) and how many seconds it saw."""

    meter: str
    interval_s: int
    start: int
    end: int
    ac_kw: float | None
    geyser_kw: float | None
    overall_kw: float | None
    samples: int

    def values(self) -> dict[str, float | None]:
        """``{"AC": ..., "Geyser": ..., "Overall": ...}`` in kW."""
        return {"AC": self.ac_kw, "Geyser": self.geyser_kw, "Overall": self.overall_kw}


def _rounded(value: float) -> float | None:
    return None if np.isnan(value) else round(float(value), DECIMALS) + 0.0  # + 0.0 turns -0.0 into 0.0


def make_window(meter: str, interval_s: int, start: int, end: int, samples: FloatArray, present: int) -> Window:
    """The window ``[start, end)`` from its samples (shape ``(end - start, 3)``) and the count of seconds received."""
    means, _ = window_means(samples, start, np.array([start, end], dtype=np.int64))
    ac, geyser, overall = (_rounded(v) for v in means[0])
    return Window(meter, interval_s, start, end, ac, geyser, overall, present)
