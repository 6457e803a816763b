"""Quick statistics per (household, interval), computed from history and cached.

A baseline covers the last ``span_s`` of the household's simulated time (default 24 h), complete final windows only,
and is recomputed once the household's watermark has moved ``refresh_s`` on (sooner while warming up).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Final
from zoneinfo import ZoneInfo

from bridge.aggregate import boundaries, window_means
from bridge.history import History
from bridge.statistics import MIN_WINDOWS, QuickStats, quick_stats

DEFAULT_SPAN_S: Final = 86_400
DEFAULT_REFRESH_S: Final = 60


@dataclass(frozen=True, slots=True)
class Baseline:
    """Statistics and the simulated span they were computed from."""

    stats: QuickStats
    from_s: int
    to_s: int
    watermark: int


class Baselines:
    """Cache of ``Baseline`` per (meter, interval)."""

    def __init__(
        self,
        history: History,
        tz: ZoneInfo,
        grace_s: int,
        span_s: int = DEFAULT_SPAN_S,
        refresh_s: int = DEFAULT_REFRESH_S,
    ) -> None:
        self.history = history
        self.tz = tz
        self.grace_s = grace_s
        self.span_s = span_s
        self.refresh_s = refresh_s
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, int], Baseline] = {}

    def get(self, meter: str, interval_s: int) -> Baseline | None:
        """The baseline of ``meter`` at ``interval_s``; None while not one window is complete."""
        watermark = self.history.watermark(meter)
        if watermark is None:
            return None
        key = (meter, interval_s)
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None:
            moved = watermark - cached.watermark
            fresh_enough = moved < (interval_s if cached.stats.window_count < MIN_WINDOWS else self.refresh_s)
            if fresh_enough:
                return cached
        baseline = self._compute(meter, interval_s, watermark)
        if baseline is not None:
            with self._lock:
                self._cache[key] = baseline
        return baseline

    def _compute(self, meter: str, interval_s: int, watermark: int) -> Baseline | None:
        to_s = watermark - self.grace_s
        first = self.history.first_ts(meter)
        from_s = to_s - self.span_s if first is None else max(to_s - self.span_s, first)
        edges = boundaries(from_s, to_s, interval_s, self.tz)
        if len(edges) < 2:
            return None
        start, end = int(edges[0]), int(edges[-1])
        samples, present = self.history.samples(meter, start, end)
        means, _ = window_means(samples, start, edges)
        return Baseline(quick_stats(means, present), start, end, watermark)
