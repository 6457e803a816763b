"""Compact signals of one local day and their expansion to one value per second.

Time is elapsed seconds from local midnight (``simulator.localday``). A ``Steps`` is a step function: ``values[k]``
holds on ``[starts[k], starts[k + 1])``, the last one until the day's end. A ``Curve`` is the piecewise solution of a
first-order model, ``T(t) = teq[k] + (t0[k] - teq[k]) * exp(-(t - starts[k]) * inv_tau[k])`` on segment ``k``.
A ``Ramp`` is linear interpolation on a regular grid (held flat beyond its first and last point).

Expansion of a window ``[a, b)`` computes every second from the same per-second formula, whether the window is the
whole day (``np.repeat``) or a slice (``np.searchsorted``), so a slice of a day equals the window computed alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def _segment_index(starts: IntArray, a: int, b: int, n: int) -> IntArray:
    """Index of the segment holding each second of ``[a, b)``; ``n`` is the day's length."""
    if a == 0 and b == n:
        lengths = np.diff(np.append(starts, n))
        return np.repeat(np.arange(starts.size, dtype=np.int64), lengths)
    seconds = np.arange(a, b, dtype=np.int64)
    return np.searchsorted(starts, seconds, side="right").astype(np.int64) - 1


@dataclass(frozen=True, slots=True)
class Steps:
    """A step function of elapsed seconds; ``starts[0] == 0``, strictly increasing."""

    starts: IntArray
    values: FloatArray

    def expand(self, a: int, b: int, n: int) -> FloatArray:
        """Values of seconds ``a .. b - 1`` of a day of ``n`` seconds."""
        if a == 0 and b == n:
            return np.repeat(self.values, np.diff(np.append(self.starts, n)))
        return self.values[_segment_index(self.starts, a, b, n)]


def constant(value: float) -> Steps:
    """The same value all day."""
    return Steps(np.zeros(1, dtype=np.int64), np.array([value], dtype=np.float64))


def steps_from_changes(times: IntArray, deltas: FloatArray, n: int, base: float = 0.0) -> Steps:
    """The running sum of ``base`` plus every ``delta`` from its time on (times outside ``[0, n)`` are clipped)."""
    times = np.clip(times, 0, n)
    order = np.argsort(times, kind="stable")
    t_sorted = times[order]
    level = base + np.cumsum(deltas[order])
    # The level after all changes of one second: the last running sum of each run of equal times.
    last = np.append(t_sorted[1:] != t_sorted[:-1], True)
    starts = np.concatenate(([0], t_sorted[last]))
    values = np.concatenate(([base], level[last]))
    keep = starts < n
    starts, values = starts[keep], values[keep]
    # Several entries at 0 (the base and changes at 0): keep the last.
    first = np.append(starts[1:] != starts[:-1], True)
    return Steps(starts[first].astype(np.int64), np.maximum(values[first], 0.0))


def steps_from_intervals(intervals: list[tuple[int, int, float]], n: int, base: float = 0.0) -> Steps:
    """``base`` plus each level on its ``[start, end)`` interval."""
    if not intervals:
        return constant(base)
    arr = np.array(intervals, dtype=np.float64)
    times = np.concatenate((arr[:, 0], arr[:, 1])).astype(np.int64)
    deltas = np.concatenate((arr[:, 2], -arr[:, 2]))
    return steps_from_changes(times, deltas, n, base)


@dataclass(frozen=True, slots=True)
class Curve:
    """Piecewise exponential approach of a first-order model; ``starts[0] == 0``."""

    starts: IntArray
    t0: FloatArray  # value at each segment's start
    teq: FloatArray  # value each segment tends to
    inv_tau: FloatArray  # 1 / time constant (1/s) of each segment

    def expand(self, a: int, b: int, n: int) -> FloatArray:
        """Values of seconds ``a .. b - 1`` of a day of ``n`` seconds."""
        idx = _segment_index(self.starts, a, b, n)
        out = np.arange(a, b, dtype=np.float64)
        out -= self.starts[idx]
        out *= -self.inv_tau[idx]
        np.exp(out, out=out)
        out *= (self.t0 - self.teq)[idx]
        out += self.teq[idx]
        return out


def flat_curve(value: float) -> Curve:
    """A constant curve."""
    return Curve(np.zeros(1, dtype=np.int64), np.array([value]), np.array([value]), np.zeros(1))


@dataclass(frozen=True, slots=True)
class Ramp:
    """Linear interpolation through ``values`` at ``first_s + i * step_s``."""

    first_s: float
    step_s: float
    values: FloatArray

    def expand(self, a: int, b: int) -> FloatArray:
        """Values of seconds ``a .. b - 1``."""
        xp = self.first_s + self.step_s * np.arange(self.values.size, dtype=np.float64)
        return np.interp(np.arange(a, b, dtype=np.float64), xp, self.values)
