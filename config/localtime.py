"""Local dates, midnights and hours of day of epoch seconds (shared by the simulator's days and schedules and the
bridge's windows and baselines).

Every UTC offset in use is a multiple of 15 minutes, and so is every transition instant, so one offset per 15-minute
bucket of UTC time is exact.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

TZ_BUCKET_S: Final = 900
SPAN_BUCKETS: Final = 4 * 96  # up to 4 days of buckets: each bucket's offset asked directly (a few us each)

IntArray = npt.NDArray[np.int64]


@lru_cache(maxsize=4096)  # a pure function of its arguments: memoised (the bridge asks for every window)
def midnight_s(day: date, tz: ZoneInfo) -> int:
    """Epoch seconds of local midnight of ``day`` (or of the first instant of the day, if midnight does not exist)."""
    return int(datetime(day.year, day.month, day.day, tzinfo=tz).timestamp())


def local_date(epoch_s: int, tz: ZoneInfo) -> date:
    """The local date in ``tz`` of an epoch second."""
    return datetime.fromtimestamp(epoch_s, UTC).astimezone(tz).date()


def utc_offset_s(epoch_s: int, tz: ZoneInfo) -> int:
    """The UTC offset of ``tz`` at ``epoch_s``, in seconds."""
    offset = datetime.fromtimestamp(epoch_s, UTC).astimezone(tz).utcoffset()
    return 0 if offset is None else int(offset.total_seconds())


@lru_cache(maxsize=256)  # pure; the meters of one fleet ask for the same days
def _span_offsets(first: int, last: int, tz: ZoneInfo) -> tuple[int, ...]:
    """The UTC offset of each 15-minute bucket ``first .. last``."""
    return tuple(utc_offset_s(bucket * TZ_BUCKET_S, tz) for bucket in range(first, last + 1))


def local_hours(ts: IntArray, tz: ZoneInfo) -> IntArray:
    """Local hour of day (0-23) in ``tz`` of each epoch second in ``ts``."""
    ts = np.asarray(ts, dtype=np.int64)
    buckets = ts // TZ_BUCKET_S
    first, last = (int(buckets.min()), int(buckets.max())) if len(ts) else (0, -1)
    if last - first < SPAN_BUCKETS:  # a span of days (a meter-day: 96 buckets): every bucket of it, no sort or search
        span = _span_offsets(first, last, tz)
        if len(set(span)) <= 1:  # one offset throughout (no DST change in the span): added as a scalar
            local = ts + (span[0] if span else 0)
        else:
            local = ts + np.array(span, dtype=np.int64)[buckets - first]
        return np.asarray((local % 86_400) // 3600, dtype=np.int64)
    if np.all(np.diff(buckets) >= 0):  # ascending (every span we generate): no sort needed
        unique = buckets[np.r_[True, np.diff(buckets) != 0]]
        inverse = np.searchsorted(unique, buckets)
    else:
        unique, inverse = np.unique(buckets, return_inverse=True)
    offsets = np.array([utc_offset_s(int(bucket) * TZ_BUCKET_S, tz) for bucket in unique], dtype=np.int64)
    local = ts + offsets[inverse.reshape(-1)]
    return np.asarray((local % 86_400) // 3600, dtype=np.int64)
