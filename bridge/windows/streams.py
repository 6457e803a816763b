"""Where a stream starts and when its next window is due (pure: event time only, no clock).

A window ``[start, end)`` of a meter is final when the meter's watermark (end of its newest second received) has reached
``end + grace_s``: the meter's own stream has passed the window, plus an optional slack for late readings. Wall-clock
arrival never finalises a window.

The grace (``FLEET_GRACE_S``) is 0 by default: a window is final as soon as its last second is in, so an event goes
out right after the reading that closes it. A meter's live readings arrive in order over one connection; the late ones
(a backlog after a reconnect, a gap repaired by replay) come seconds later, far beyond any small grace, and a window
they change is sent again as ``event: revision`` (``bridge.windows.revisions``, ``bridge.http.streaming``). A grace > 0
trades latency (every event arrives ``grace_s`` later) for fewer revisions. ``format=legacy`` streams get no revisions:
a widget user who sees late data there may set a grace.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from bridge.windows.aggregate import window_end, window_start

# A start_index up to this far after the meter's current time of day means "today" (clocks differ a little);
# further ahead means yesterday's occurrence, from history.
START_SKEW_S: Final = 300


def start_for_index(start_index: int, reference: int, tz: ZoneInfo) -> int:
    """Epoch second of the latest occurrence of local time of day ``start_index`` at or before ``reference`` (or up
    to ``START_SKEW_S`` after it: a client clock a little ahead still means the coming moment, across midnight too)."""
    today = datetime.fromtimestamp(reference, tz).date()
    candidates = []
    for days in (-1, 0, 1):  # yesterday's, today's and tomorrow's occurrence (tomorrow's: just past midnight)
        day = today + timedelta(days=days)
        midnight = datetime(day.year, day.month, day.day, tzinfo=tz)
        candidates.append(int((midnight + timedelta(seconds=start_index)).timestamp()))
    return max(c for c in candidates if c <= reference + START_SKEW_S)


def live_start(watermark: int, interval_s: int, grace_s: int, tz: ZoneInfo) -> int:
    """Start of the newest final window (so a live stream's first event comes at once), or of the one before it."""
    final_until = watermark - grace_s
    current = window_start(final_until - 1, interval_s, tz)
    if window_end(current, interval_s, tz) <= final_until:
        return current
    return window_start(current - 1, interval_s, tz)


def resume_start(last_event_id: int, interval_s: int, tz: ZoneInfo) -> int:
    """The window after the one whose id (its end) the client saw last."""
    start = window_start(last_event_id, interval_s, tz)
    return start if start == last_event_id else window_end(start, interval_s, tz)


@dataclass(slots=True)
class WindowCursor:
    """The next window a stream owes its client; ``start`` is None until the meter's time is known."""

    interval_s: int
    grace_s: int
    tz: ZoneInfo
    start_index: int | None = None
    start: int | None = None
    # (start, end) of the window last asked about: a stream asks for its next window's end on every pass, and
    # window_end looks up the local midnight (a time-zone conversion), a tenth of the worker's CPU at 10,000 streams.
    _end: tuple[int, int] | None = field(default=None, repr=False, compare=False)

    def _end_of(self, start: int) -> int:
        if self._end is None or self._end[0] != start:
            self._end = (start, window_end(start, self.interval_s, self.tz))
        return self._end[1]

    def resolve(self, watermark: int, first_ts: int | None) -> None:
        """Fix the first window once the meter's watermark is known; never before the oldest second held."""
        if self.start is not None:
            return
        if self.start_index is not None:
            start = window_start(start_for_index(self.start_index, watermark - 1, self.tz), self.interval_s, self.tz)
        else:
            start = live_start(watermark, self.interval_s, self.grace_s, self.tz)
        if first_ts is not None:
            start = max(start, window_start(first_ts, self.interval_s, self.tz))
        self.start = start

    def due(self, watermark: int | None) -> tuple[int, int] | None:
        """``(start, end)`` of the next window if it is final at ``watermark``."""
        if self.start is None or watermark is None:
            return None
        end = self._end_of(self.start)
        return (self.start, end) if watermark >= end + self.grace_s else None

    def final_at(self) -> int:
        """The watermark at which the next window becomes final (its end plus the grace)."""
        if self.start is None:
            raise ValueError("cursor not resolved")
        return self._end_of(self.start) + self.grace_s

    def first_whole(self, second: int) -> int:
        """Start of the first window that begins at or after ``second`` (the oldest whole window from there)."""
        start = window_start(second, self.interval_s, self.tz)
        return start if start >= second else window_end(start, self.interval_s, self.tz)

    def next_start(self, start: int) -> int:
        """Start of the window after the one starting at ``start``."""
        return window_end(start, self.interval_s, self.tz)

    def advance(self) -> None:
        """Move past the window just sent."""
        if self.start is not None:
            self.start = self._end_of(self.start)
