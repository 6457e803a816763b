"""Local days of a time zone: from local midnight to the next local midnight (23 h or 25 h on DST days).

Inside a day, time is *elapsed seconds* ``t`` from local midnight, ``0 <= t < n_s``. *Wall seconds* are what a clock on
the wall shows, seconds since 00:00 of that date; they jump by ``shift_s`` at the elapsed second ``shift_at_s`` of a
day's one offset change (spring forward ``+3600``, fall back ``-3600``). A wall time that does not exist maps to the
change instant; one that happens twice maps to its first occurrence. Assumes at most one offset change per day.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from config.localtime import local_date, midnight_s


def _offset_s(epoch_s: int, tz: ZoneInfo) -> tuple[int, float]:
    local = datetime.fromtimestamp(epoch_s, UTC).astimezone(tz)
    offset, dst = local.utcoffset(), local.dst()
    return (
        0 if offset is None else int(offset.total_seconds()),
        0.0 if dst is None else dst.total_seconds() / 3600.0,
    )


def day_span(day: date, tz: ZoneInfo) -> tuple[int, int]:
    """``(start_s, end_s)`` of the local day: midnight to next midnight, half-open; consecutive days tile time."""
    return midnight_s(day, tz), midnight_s(day + timedelta(days=1), tz)


def days_covering(start_s: int, n: int, tz: ZoneInfo) -> Iterator[tuple[date, int, int]]:
    """``(day, day_start_s, day_end_s)`` of every local day that overlaps ``[start_s, start_s + n)``, in order."""
    if n <= 0:
        return
    day = local_date(start_s, tz)
    while True:
        start, end = day_span(day, tz)
        yield day, start, end
        if end >= start_s + n:
            return
        day += timedelta(days=1)


@dataclass(frozen=True, slots=True)
class LocalDay:
    """One local date's span of epoch seconds and its wall clock."""

    date: date
    start_s: int  # epoch seconds of local midnight
    n_s: int  # seconds in the day: 86,400, or 82,800 / 90,000 on DST days
    shift_at_s: int  # elapsed second at which the wall clock jumps (n_s if it does not)
    shift_s: int  # the jump: new UTC offset minus old
    dst_before_h: float  # daylight-saving offset (h) before and after the jump
    dst_after_h: float

    @property
    def ordinal(self) -> int:
        """The date's proleptic Gregorian ordinal (the key of the day's random streams)."""
        return self.date.toordinal()

    @property
    def weekday(self) -> bool:
        """Monday to Friday."""
        return self.date.weekday() < 5

    def elapsed_s(self, wall_h: float) -> int:
        """Elapsed second (clipped to ``[0, n_s]``) at which the wall clock first shows ``wall_h`` hours (0-24)."""
        wall = round(wall_h * 3600.0)
        if wall >= self.shift_at_s:
            wall = max(self.shift_at_s, wall - self.shift_s)
        return min(max(wall, 0), self.n_s)

    def wall_h(self, elapsed: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Wall-clock hours (since 00:00) at these elapsed seconds."""
        return np.where(elapsed >= self.shift_at_s, elapsed + self.shift_s, elapsed) / 3600.0

    def dst_h(self, elapsed: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Daylight-saving offset in hours at these elapsed seconds."""
        return np.where(elapsed >= self.shift_at_s, self.dst_after_h, self.dst_before_h)


@functools.lru_cache(maxsize=256)  # a pure function of its arguments: memoised, shared by the meters of a fleet
def local_day(day: date, tz: ZoneInfo) -> LocalDay:
    """The span and wall clock of ``day`` in ``tz``."""
    start = midnight_s(day, tz)
    end = midnight_s(day + timedelta(days=1), tz)
    n = end - start
    off0, dst0 = _offset_s(start, tz)
    off1, dst1 = _offset_s(end - 1, tz)
    if off0 == off1:
        return LocalDay(day, start, n, n, 0, dst0, dst1)
    lo, hi = 0, n - 1  # offset at lo is off0, at hi is off1: find the first second with off1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _offset_s(start + mid, tz)[0] == off0:
            lo = mid
        else:
            hi = mid
    return LocalDay(day, start, n, hi, off1 - off0, dst0, dst1)
