"""Late readings and the windows they revise (pure: no clock, no I/O).

A reading is *late* when it is stored (not a duplicate) for a second below its meter's watermark: it fills a second
the meter's stream had already passed, so a window holding it may already have gone out (over SSE, or retained to
MQTT) without it. Late readings come from gap repair (replayed seqs) and from a meter's backlog after a reconnect.

``LateLog`` keeps, per meter, the late seconds in arrival order, each numbered by a revision that increases by exactly
1. A reader (one SSE stream, the republisher) remembers the revision it has seen and asks ``since(revision)`` for the
seconds that arrived after it: O(1) when nothing is new (the usual case), O(new entries) otherwise.

Bounds: the last ``LOG_SIZE`` late seconds are kept exactly (a ring of epoch seconds, 8 bytes each, allocated at the
meter's first late reading). Older entries are folded into summaries of ``SPILL_BLOCK`` consecutive revisions, each the
range ``[first, last]`` of the seconds it held, the last ``SPILL_BLOCKS`` of them kept. A reader that fell more than
``LOG_SIZE`` entries behind gets those ranges as ``spans`` (a superset: every window overlapping them may have
changed), and one that fell behind even the summaries gets ``EVERYTHING``. Readers clip spans to the windows they sent
and history still holds, and ``revised_starts`` revises at most ``MAX_REVISIONS`` windows at once (the newest).

Windows are half-open ``[start, end)`` in epoch seconds, aligned as in ``bridge.windows.aggregate``.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import deque
from dataclasses import dataclass
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from bridge.windows.aggregate import window_end, window_start

LOG_SIZE: Final = 4096  # late seconds kept exactly per meter (32 KB)
SPILL_BLOCK: Final = 256  # revisions summarised together once they fall out of the exact log
SPILL_BLOCKS: Final = 256  # summaries kept: together with the log, 69,632 late seconds a reader may fall behind
EVERYTHING: Final = (0, 2**62)  # the span of a reader that fell behind every summary: anything may have changed
MAX_REVISIONS: Final = 4096  # windows revised at once by one reader; the newest are kept


@dataclass(frozen=True, slots=True)
class LateSeconds:
    """What arrived late after a reader's revision: the revision now, the exact seconds (ascending, each once), and
    inclusive ``(first, last)`` ranges that may hold late seconds the reader can no longer be told exactly."""

    revision: int
    seconds: tuple[int, ...] = ()
    spans: tuple[tuple[int, int], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.seconds or self.spans)


class LateLog:
    """One meter's late seconds, numbered by revision (1, 2, 3, ...): exact for the last ``size``, then summarised."""

    def __init__(self, size: int = LOG_SIZE, block: int = SPILL_BLOCK, blocks: int = SPILL_BLOCKS) -> None:
        if size < 1 or block < 1 or blocks < 1:
            raise ValueError("size, block and blocks must be >= 1")
        self.size = size
        self.block = block
        self.revision = 0
        self._ts: npt.NDArray[np.int64] = np.zeros(size, dtype=np.int64)  # revision r in slot r % size
        self._spilled: deque[tuple[int, int, int, int]] = deque(maxlen=blocks)  # (first rev, last rev, lo, hi)
        self._open: list[int] | None = None  # the summary being filled: [first rev, last rev, lo, hi]

    def record(self, ts: int) -> int:
        """Log one late second; its revision."""
        revision = self.revision + 1
        slot = revision % self.size
        if revision > self.size:  # the slot holds revision - size: it leaves the exact log
            self._spill(revision - self.size, int(self._ts[slot]))
        self._ts[slot] = ts
        self.revision = revision
        return revision

    def _spill(self, revision: int, ts: int) -> None:
        summary = self._open
        if summary is not None and (summary[0] - 1) // self.block == (revision - 1) // self.block:
            summary[1], summary[2], summary[3] = revision, min(summary[2], ts), max(summary[3], ts)
            return
        if summary is not None:
            self._spilled.append((summary[0], summary[1], summary[2], summary[3]))
        self._open = [revision, revision, ts, ts]

    def since(self, revision: int) -> LateSeconds:
        """The late seconds logged after ``revision`` (a value of ``self.revision`` seen earlier)."""
        if revision >= self.revision:
            return LateSeconds(self.revision)
        oldest_exact = max(1, self.revision - self.size + 1)
        revisions = np.arange(max(revision + 1, oldest_exact), self.revision + 1, dtype=np.int64)
        seconds = tuple(int(ts) for ts in np.unique(self._ts[revisions % self.size]))
        if revision + 1 >= oldest_exact:
            return LateSeconds(self.revision, seconds)
        summaries = [*self._spilled, *([tuple(self._open)] if self._open is not None else [])]
        if not summaries or summaries[0][0] > revision + 1:  # even the summaries of what was missed are gone
            return LateSeconds(self.revision, seconds, (EVERYTHING,))
        ranges = [(lo, hi) for _, last, lo, hi in summaries if last > revision]
        return LateSeconds(self.revision, seconds, merge_spans(ranges))


def merge_spans(spans: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Inclusive ranges sorted and merged where they overlap or touch."""
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return tuple(merged)


def revised_starts(
    late: LateSeconds, lower: int, upper: int, interval_s: int, tz: ZoneInfo, limit: int = MAX_REVISIONS
) -> tuple[list[int], int]:
    """Starts (ascending, each once) of the windows starting in ``[lower, upper)`` that hold a late second (or overlap
    a span), at most the newest ``limit``; and about how many more windows were left out.

    ``lower`` and ``upper`` are window starts: the oldest window the reader may revise (it sent it, history still
    holds it) and the next one it has not sent. Sixty late seconds in one window revise it once.
    """
    starts: set[int] = set()
    seconds = late.seconds
    i = bisect_left(seconds, lower)
    while i < len(seconds) and seconds[i] < upper:
        start = window_start(seconds[i], interval_s, tz)
        starts.add(start)
        i = bisect_left(seconds, window_end(start, interval_s, tz), i)  # the window's other seconds change nothing
    skipped = 0
    floor = upper - limit * interval_s  # windows last at most interval_s: the newest `limit` all start after this
    for lo, hi in late.spans:
        first, last = max(lo, lower), min(hi, upper - 1)
        if first > last:
            continue
        if first < floor:
            skipped += math.ceil((min(floor, last + 1) - first) / interval_s)
            first = floor
            if first > last:
                continue
        start = window_start(first, interval_s, tz)
        while start <= last:
            starts.add(start)
            start = window_end(start, interval_s, tz)
    ordered = sorted(starts)
    if len(ordered) > limit:
        skipped += len(ordered) - limit
        ordered = ordered[-limit:]
    return ordered, skipped
