"""Per-second history of every meter: in memory, a ring of the last ``capacity_s`` simulated seconds per meter
(``bridge.ingest.ring``), and optionally on disk (``bridge.ingest.store``: every new reading is queued for SQLite; older
seconds are read back from it; ``load`` refills the rings after a restart).

Deduplicates by (meter, second): QoS 1 is at-least-once, so the same reading may arrive twice. Readers wait for a
meter's watermark (the end of its newest second) to reach a target; only those whose target came are woken (and, if they
ask, those waiting for the meter's next late reading).
A reading stored below its meter's watermark is *late* (gap repair, a backlog after a reconnect): it is logged per meter
(``bridge.windows.revisions.LateLog``) so that streams and the republisher can revise the windows they already sent.
Thread-safe: the MQTT thread writes, request handlers read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np

from bridge.ingest.ring import STORED, FloatArray, MeterRing
from bridge.ingest.store import ReadingStore
from bridge.windows.revisions import LateLog, LateSeconds
from config.run.progress import Progress
from config.wire import OFFLINE, UNKNOWN, Reading


@dataclass(frozen=True, slots=True)
class MeterSummary:
    """Counters and bounds of one meter's history."""

    meter: str
    status: str
    first_ts: int | None
    watermark: int | None
    last_seq: int | None
    received: int
    duplicates: int
    too_old: int
    gaps_open: int = 0
    gaps_repaired: int = 0
    seq_restarts: int = 0


__all__ = ["History", "MeterSummary"]

_NEVER: Final = 2**63  # a target no watermark reaches: nobody waits
_ANY: Final = 0  # a target every watermark reaches (a watermark is the end of a second >= config.wire.MIN_TS)


class History:
    """Every meter's ring, the meters' availability, and conditions to wait for new data."""

    def __init__(
        self,
        capacity_s: int,
        store: ReadingStore | None = None,
        speed: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if capacity_s < 1:
            raise ValueError("capacity_s must be >= 1")
        self.capacity_s = capacity_s
        self.store = store
        self.speed = speed  # simulated seconds per wall second (FLEET_SPEED): how fast a meter's time may advance
        self._clock = clock  # wall time of arrival (plausible time, bridge.ingest.sequence); never for aggregation
        self._lock = threading.Lock()
        self._rings: dict[str, MeterRing] = {}
        self._status: dict[str, str] = {}
        # meter -> watermark wanted -> one event shared by every stream waiting for it: a window's end wakes its
        # streams with one set(), and a stream that times out has nothing to remove. A per-stream event in a list
        # (set one by one, removed by a scan on each timeout) cost 10,000 streams most of the worker's CPU
        # (docs/performance.md, issue #13). An event nobody waits on any more goes when the watermark passes it.
        self._waiters: dict[str, dict[int, threading.Event]] = {}
        # The same for waiters that also want the meter's next late reading (streams that send revisions); a late
        # reading wakes them all. Kept apart so that a late reading wakes no stream that did not ask.
        self._late_waiters: dict[str, dict[int, threading.Event]] = {}
        # meter -> the lowest target waited for (either kind): a reading below it wakes nobody and costs one compare.
        # A Condition notified on every reading cost 5% of the worker while 100,000 readings drained, with nobody
        # waiting on it (docs/performance.md, issue #13).
        self._next_wake: dict[str, int] = {}
        self._late: dict[str, LateLog] = {}  # meter -> its late seconds (bridge.windows.revisions), from its first one

    def add(self, reading: Reading, persist: bool = True) -> bool:
        """Store a reading; True if it was stored (see ``put`` for why not)."""
        return self.put(reading, persist) == STORED

    def put(self, reading: Reading, persist: bool = True) -> str:
        """Store a reading: ``STORED``, ``DUPLICATE`` or the reason it was rejected (``MeterRing.add``); wakes readers
        of that meter when its watermark advances."""
        with self._lock:
            ring = self._rings.get(reading.meter)
            if ring is None:
                ring = self._rings[reading.meter] = MeterRing(self.capacity_s, self.speed)
            before = ring.last_ts
            outcome = ring.add(reading, self._clock())
            stored = outcome == STORED
            if stored:
                last = ring.last_ts
                if before is not None and reading.ts < before:  # below the watermark: a window may be out
                    self._late_log(reading.meter).record(reading.ts)
                    self._wake_late(reading.meter)
                elif last is not None and last != before and last + 1 >= self._next_wake.get(reading.meter, _NEVER):
                    self._wake(reading.meter, last + 1)
        if stored and persist and self.store is not None:
            self.store.put(reading)
        return outcome

    def load(self, report: Callable[[str], None] | None = None) -> int:
        """Refill the rings from the store (after a restart): each meter's newest ``capacity_s`` seconds. A reload
        that takes long (thousands of meters) tells ``report`` how far along it is, every few seconds."""
        if self.store is None:
            return 0
        loaded = 0
        # The newest readings on disk arrived about when the store was last written: each meter's clock goes on
        # from there (bridge.ingest.sequence.MeterClock), so a bridge that was down does not take its meters for early.
        arrived = self._clock() - max(0.0, time.time() - self.store.last_write())
        meters = self.store.meters()
        progress = Progress("history: reloaded", unit="meters")
        progress.update(0, len(meters), self._clock())
        for done, (meter, newest) in enumerate(meters, 1):
            ts, columns, seqs = self.store.recent_arrays(meter, newest - self.capacity_s + 1)
            with self._lock:
                ring = self._rings.get(meter)
                if ring is None:
                    ring = self._rings[meter] = MeterRing(self.capacity_s, self.speed)
                loaded += ring.load(ts, columns, seqs, arrived)
                if ring.last_ts is not None:
                    self._wake(meter, ring.last_ts + 1)
            line = progress.update(done, len(meters), self._clock())
            if line is not None and report is not None:
                report(f"{line} ({loaded:,} readings)")
        return loaded

    def _wake(self, meter: str, watermark: int) -> None:
        """Wake the waiters of ``meter`` whose watermark has come (called with the lock held)."""
        for kind in (self._waiters, self._late_waiters):
            waiters = kind.get(meter)
            if waiters:
                for target in [target for target in waiters if watermark >= target]:  # few: one per window end
                    waiters.pop(target).set()
        self._update_next_wake(meter)

    def _wake_late(self, meter: str) -> None:
        """Wake every waiter of ``meter`` that asked for late readings (called with the lock held)."""
        waiters = self._late_waiters.get(meter)
        if waiters:
            for event in waiters.values():
                event.set()
            waiters.clear()
            self._update_next_wake(meter)

    def _update_next_wake(self, meter: str) -> None:
        lowest = min(min(self._waiters.get(meter) or (_NEVER,)), min(self._late_waiters.get(meter) or (_NEVER,)))
        if lowest == _NEVER:
            self._next_wake.pop(meter, None)
        else:
            self._next_wake[meter] = lowest

    def wait_until(self, meter: str, target: int, timeout: float, late_after: int | None = None) -> int | None:
        """Wait up to ``timeout`` s until ``meter``'s watermark reaches ``target`` or, given ``late_after``, until the
        meter's late revision is beyond it (a late reading came: ``late_revision``); the watermark then.

        Only the waiters whose target has come are woken (2,000 streams of a 60 s window wake once a minute, not once
        a reading), all of them by one event.
        """
        with self._lock:
            ring = self._rings.get(meter)
            if ring is not None and ring.last_ts is not None and ring.last_ts + 1 >= target:
                return ring.last_ts + 1
            if late_after is not None:
                log = self._late.get(meter)
                if log is not None and log.revision != late_after:  # came before this wait: no wake-up will follow
                    return None if ring is None or ring.last_ts is None else ring.last_ts + 1
            waiters = (self._waiters if late_after is None else self._late_waiters).setdefault(meter, {})
            event = waiters.get(target)
            if event is None:
                event = waiters[target] = threading.Event()
                self._next_wake[meter] = min(self._next_wake.get(meter, _NEVER), target)
        event.wait(timeout)
        return self.watermark(meter)

    def set_status(self, meter: str, status: str) -> None:
        """Record a meter's availability (``online``/``offline``)."""
        with self._lock:
            self._status[meter] = status

    def status_unknown(self, meter: str) -> None:
        """A meter already heard from said something other than ``online``/``offline``: its status is ``unknown``
        (a junk status never adds a meter)."""
        with self._lock:
            if meter in self._status or meter in self._rings:
                self._status[meter] = UNKNOWN

    def meters(self) -> list[str]:
        """Every meter heard from (readings or status), sorted."""
        with self._lock:
            return sorted(set(self._rings) | set(self._status))

    def watermark(self, meter: str) -> int | None:
        """End of the newest second received from ``meter`` (None before its first reading)."""
        with self._lock:
            ring = self._rings.get(meter)
            return None if ring is None or ring.last_ts is None else ring.last_ts + 1

    def first_ts(self, meter: str) -> int | None:
        """Oldest second still held for ``meter``."""
        with self._lock:
            ring = self._rings.get(meter)
            return None if ring is None else ring.first_ts

    def samples(self, meter: str, start: int, end: int) -> tuple[FloatArray, int]:
        """Values (kW, NaN = none) of ``meter`` for seconds ``[start, end)`` and the number of seconds received."""
        with self._lock:
            ring = self._rings.get(meter)
            if ring is None:
                values, present = np.full((max(end - start, 0), 3), np.nan), 0
                oldest_in_ring = end
            else:
                values, present = ring.samples(start, end)
                oldest_in_ring = start if ring.last_ts is None else ring.last_ts - self.capacity_s + 1
        if self.store is not None and start < min(oldest_in_ring, end):  # older than the ring holds: from disk
            cut = min(oldest_in_ring, end)
            disk, received = self.store.samples(meter, start, cut)
            values[: cut - start] = disk
            present = int(received.sum()) + present
        return values, present

    def last_energy(self, meter: str, start: int, end: int) -> tuple[float, float, float] | None:
        """AC, Geyser and Overall energy registers (kWh) of ``meter``'s last second received in ``[start, end)``."""
        with self._lock:
            ring = self._rings.get(meter)
            return None if ring is None else ring.last_energy(start, end)

    def _late_log(self, meter: str) -> LateLog:
        log = self._late.get(meter)
        if log is None:
            log = self._late[meter] = LateLog()
        return log

    def late_revision(self, meter: str) -> int:
        """How many late readings ``meter`` has had (0 before the first): a generation for rendered windows."""
        with self._lock:
            log = self._late.get(meter)
            return 0 if log is None else log.revision

    def late_since(self, meter: str, revision: int) -> LateSeconds:
        """The seconds of ``meter`` stored late after ``revision`` (``bridge.windows.revisions.LateLog.since``)."""
        with self._lock:
            log = self._late.get(meter)
            return LateSeconds(0) if log is None else log.since(revision)

    def wait_for_watermark(self, meter: str, beyond: int | None, timeout: float) -> int | None:
        """Wait up to ``timeout`` s until ``meter``'s watermark exceeds ``beyond``; return the watermark then."""
        return self.wait_until(meter, _ANY if beyond is None else beyond + 1, timeout)

    def ingest_lags(self) -> dict[str, float]:
        """Per meter not known to be offline: wall seconds its newest reading held is behind its estimated time
        (``MeterClock.behind_s``; bridge.http.metrics' ingest lag)."""
        with self._lock:
            wall = self._clock()
            return {
                meter: ring.clock.behind_s(ring.last_ts, wall)
                for meter, ring in self._rings.items()
                if ring.last_ts is not None and self._status.get(meter) != OFFLINE
            }

    def gaps(self, meter: str) -> list[tuple[int, int]]:
        """The seq ranges ``(first, last)`` missing below ``meter``'s highest seq."""
        with self._lock:
            ring = self._rings.get(meter)
            return [] if ring is None else [(first, last) for first, last in ring.seqs.gaps]

    def summary(self, meter: str) -> MeterSummary:
        """Counters of one meter."""
        with self._lock:
            ring = self._rings.get(meter)
            status = self._status.get(meter, UNKNOWN)
            if ring is None:
                return MeterSummary(meter, status, None, None, None, 0, 0, 0)
            watermark = None if ring.last_ts is None else ring.last_ts + 1
            return MeterSummary(
                meter,
                status,
                ring.first_ts,
                watermark,
                ring.last_seq,
                ring.received,
                ring.duplicates,
                ring.too_old,
                ring.seqs.open,
                ring.seqs.repaired,
                ring.seqs.restarts,
            )
