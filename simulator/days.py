"""Local days of the fleet's time zone as spans of epoch seconds.

A local day is the half-open span ``[local midnight, next local midnight)`` in epoch seconds (UTC); on a DST change it
is 23 or 25 hours long. Consecutive days tile time exactly: a day's end is the next day's start. A day's ordinal is
``date.toordinal()``, the ``when`` of the seed tree's day-keyed purposes (``Purpose.DAY``, ``Purpose.FAULTS``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo


def day_start_s(day: date, tz: ZoneInfo) -> int:
    """Epoch second of the local midnight that starts ``day`` in ``tz``."""
    return int(datetime(day.year, day.month, day.day, tzinfo=tz).timestamp())


def day_span(day: date, tz: ZoneInfo) -> tuple[int, int]:
    """``(start_s, end_s)`` of the local day: midnight to next midnight, half-open."""
    return day_start_s(day, tz), day_start_s(day + timedelta(days=1), tz)


def local_date(epoch_s: int, tz: ZoneInfo) -> date:
    """The local date in ``tz`` that contains the epoch second ``epoch_s``."""
    return datetime.fromtimestamp(epoch_s, UTC).astimezone(tz).date()


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
