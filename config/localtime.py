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


def local_hours(ts: IntArray, tz: ZoneInfo) -> IntArray:
    """Local hour of day (0-23) in ``tz`` of each epoch second in ``ts``."""
    ts = np.asarray(ts, dtype=np.int64)
    buckets = ts // TZ_BUCKET_S
    if len(ts) and np.all(np.diff(buckets) >= 0):  # ascending (every span we generate): no sort needed
        unique = buckets[np.r_[True, np.diff(buckets) != 0]]
        inverse = np.searchsorted(unique, buckets)
    else:
        unique, inverse = np.unique(buckets, return_inverse=True)
    offsets = np.array([utc_offset_s(int(bucket) * TZ_BUCKET_S, tz) for bucket in unique], dtype=np.int64)
    local = ts + offsets[inverse.reshape(-1)]
    return np.asarray((local % 86_400) // 3600, dtype=np.int64)
