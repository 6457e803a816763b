"""Quick statistics per (household, interval), computed from history, cached, refreshed in the background.

A baseline covers the last ``span_s`` of the household's simulated time (default 24 h), complete final windows only,
once for the whole day and once per local hour of day (AC and Geyser follow schedules, so "normal at 19:00" is what
makes a colour meaningful). A request never waits for a recomputation: it gets the cached baseline, and a background
thread recomputes those asked for once the household's watermark has moved ``refresh_s`` on (sooner while warming
up). Only the very first request of a (household, interval) computes in line (a few milliseconds to tens of ms).
Late readings (``bridge.windows.revisions``) make a baseline stale too: the next background pass recomputes it from the
corrected history.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np

from bridge.ingest.history import History
from bridge.ingest.ticker import Ticker
from bridge.windows.aggregate import Window, boundaries, window_means
from bridge.windows.statistics import MIN_WINDOWS, QuickStats, level, quick_stats, window_colours
from config.localtime import local_hours

log = logging.getLogger(__name__)

DEFAULT_SPAN_S: Final = 86_400
DEFAULT_REFRESH_S: Final = 60
REFRESH_EVERY_S: Final = 1.0  # how often the background thread looks for stale baselines (wall time)
FORGET_AFTER_S: Final = 3600.0  # a baseline nobody asked for in an hour (wall) is no longer refreshed


@dataclass(frozen=True, slots=True)
class Baseline:
    """Statistics of the whole span and of each local hour of day, and the simulated span they come from."""

    stats: QuickStats
    hourly: dict[int, QuickStats]
    from_s: int
    to_s: int
    watermark: int
    late_revision: int = 0  # the household's late revision when computed (bridge.ingest.history.History.late_revision)

    def for_window(self, window: Window, tz: ZoneInfo, by_hour: bool) -> QuickStats:
        """The statistics that judge ``window``: its local hour's, or the whole span's."""
        if not by_hour:
            return self.stats
        hour = datetime.fromtimestamp(window.start, tz).hour
        return self.hourly.get(hour, self.stats)


def window_status(
    window: Window, baseline: Baseline | None, tz: ZoneInfo, by_hour: bool = False
) -> tuple[dict[str, str], str]:
    """Colour per appliance of ``window`` and the worst of them (``bridge.windows.statistics.colour``)."""
    stats = None if baseline is None else baseline.for_window(window, tz, by_hour)
    status = window_colours(window.values(), stats)
    return status, level(status)


class Baselines:
    """Cache of ``Baseline`` per (meter, interval), with a background refresher."""

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
        self._wanted: dict[tuple[str, int], float] = {}  # key -> wall time last asked for
        self._ticker = Ticker("baselines", REFRESH_EVERY_S, self.refresh_stale)

    def want(self, meter: str, interval_s: int) -> None:
        """Ask for a baseline without waiting: the background thread (or the next ``get``) computes it."""
        with self._lock:
            self._wanted[(meter, interval_s)] = time.monotonic()

    def get(self, meter: str, interval_s: int) -> Baseline | None:
        """The cached baseline (computed now only if there is none yet); None while no window is complete."""
        key = (meter, interval_s)
        with self._lock:
            self._wanted[key] = time.monotonic()
            cached = self._cache.get(key)
        if cached is not None:
            return cached
        return self._refresh(key)

    def start(self) -> None:
        """Start the background refresher."""
        self._ticker.start()

    def stop(self) -> None:
        """Stop the background refresher."""
        self._ticker.stop()

    def refresh_stale(self) -> int:
        """Recompute every wanted baseline whose household moved on enough; returns how many were recomputed."""
        now = time.monotonic()
        with self._lock:
            for key in [k for k, asked in self._wanted.items() if now - asked > FORGET_AFTER_S]:
                del self._wanted[key]
            keys = list(self._wanted)
        done = 0
        for key in keys:
            if self._stale(key):
                self._refresh(key)
                done += 1
        return done

    def _stale(self, key: tuple[str, int]) -> bool:
        watermark = self.history.watermark(key[0])
        if watermark is None:
            return False
        with self._lock:
            cached = self._cache.get(key)
        if cached is None or self.history.late_revision(key[0]) != cached.late_revision:
            return True
        moved = watermark - cached.watermark
        return moved >= (key[1] if cached.stats.window_count < MIN_WINDOWS else self.refresh_s)

    def _refresh(self, key: tuple[str, int]) -> Baseline | None:
        watermark = self.history.watermark(key[0])
        if watermark is None:
            return None
        late_revision = self.history.late_revision(key[0])  # before the samples: a later late reading stales it
        baseline = self._compute(key[0], key[1], watermark, late_revision)
        if baseline is not None:
            with self._lock:
                self._cache[key] = baseline
        return baseline

    def _compute(self, meter: str, interval_s: int, watermark: int, late_revision: int) -> Baseline | None:
        to_s = watermark - self.grace_s
        first = self.history.first_ts(meter)
        from_s = to_s - self.span_s if first is None else max(to_s - self.span_s, first)
        edges = boundaries(from_s, to_s, interval_s, self.tz)
        if len(edges) < 2:
            return None
        start, end = int(edges[0]), int(edges[-1])
        samples, present = self.history.samples(meter, start, end)
        means, counts = window_means(samples, start, edges)
        hours = local_hours(edges[:-1], self.tz)
        seconds = counts.max(axis=1)  # seconds with a value in each window
        hourly = {int(h): quick_stats(means[hours == h], int(seconds[hours == h].sum())) for h in np.unique(hours)}
        return Baseline(quick_stats(means, present), hourly, start, end, watermark, late_revision)
