"""One meter's per-second ring: its last ``capacity_s`` simulated seconds in flat arrays, and what storing a reading
there decided (``STORED``, or why not).

The dedup by (meter, second), the too-old and conflicting readings, and the seq bookkeeping of each reading stored
(``bridge.ingest.sequence``) happen here. Not thread-safe: ``History`` holds its lock around every call. Powers in kW,
energy registers in kWh; second ``ts`` is ``[ts, ts + 1)``.
"""

from __future__ import annotations

import math
import mmap
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from bridge.ingest.sequence import FUTURE, MeterClock, SeqTracker
from config.wire import Reading

FloatArray = npt.NDArray[np.float64]

__all__ = ["CONFLICT", "DUPLICATE", "STORED", "TOO_OLD", "FloatArray", "MeterRing"]

# What ``MeterRing.add`` (and so ``History.put``) did with a reading: stored it, or why not (the reasons are counted as
# rejects by ingest).
STORED: Final = "stored"
DUPLICATE: Final = "duplicate"  # the same reading again (QoS 1 redelivery, a replay of a second held)
TOO_OLD: Final = "too_old"  # older than the ring holds
CONFLICT: Final = "conflict"  # a second held already, with another seq or other values: the first one stays

_EMPTY = 0  # the stamp of a slot never written: no reading is for second 0 (config.wire.MIN_TS)


def _lazy_zeros(shape: tuple[int, ...], dtype: type[np.int64] | type[np.float64]) -> npt.NDArray[Any]:
    """Zeros in anonymous memory of their own, which the OS maps page by page when first written (np.zeros may take
    heap memory that calloc must clear, then every page of a new ring is touched at once)."""
    count = math.prod(shape)
    return np.frombuffer(mmap.mmap(-1, max(count, 1) * 8), dtype=dtype, count=count).reshape(shape)


class MeterRing:
    """One meter's last ``capacity_s`` seconds: slot ``ts % capacity_s`` holds second ``ts`` if ``stamps`` says so.

    The arrays start as zeros that the OS maps lazily: a ring takes memory as its seconds come (a full 2-day ring is
    9.7 MB; filled with NaN up front, 1,000 new meters took 10 GB, and most of the 24 s that 60,000 readings took).
    A single reading is written through flat memoryviews of the arrays: a quarter of the cost of numpy's item
    assignments (0.2 us, not 0.8).
    """

    def __init__(self, capacity_s: int, speed: float = 1.0) -> None:
        self.capacity_s = capacity_s
        self.stamps: npt.NDArray[np.int64] = _lazy_zeros((capacity_s,), np.int64)  # _EMPTY
        self.seqnums: npt.NDArray[np.int64] = _lazy_zeros((capacity_s,), np.int64)  # the seq of each second held
        self.values: FloatArray = _lazy_zeros((capacity_s, 3), np.float64)  # kW; read only where stamps say present
        self.energies: FloatArray = _lazy_zeros((capacity_s, 3), np.float64)  # kWh registers; likewise
        self._stamps = self.stamps.data.cast("B").cast("q")
        self._seqnums = self.seqnums.data.cast("B").cast("q")
        self._values = self.values.data.cast("B").cast("d")  # flat: slot s, channel c at 3 * s + c
        self._energies = self.energies.data.cast("B").cast("d")
        self.first_ts: int | None = None
        self.last_ts: int | None = None
        self.last_seq: int | None = None
        self.seqs = SeqTracker()
        self.clock = MeterClock(speed)
        self.received = 0
        self.duplicates = 0
        self.too_old = 0

    def add(self, reading: Reading, wall: float = 0.0) -> str:
        """Store a reading that arrived at ``wall`` (monotonic seconds): ``STORED``, ``DUPLICATE`` or why it was
        rejected (``TOO_OLD``, ``CONFLICT``, or ``bridge.ingest.sequence``'s ``future`` / ``seq_jump`` /
        ``seq_reused``)."""
        ts, seq = reading.ts, reading.seq
        if self.last_ts is not None and ts <= self.last_ts - self.capacity_s:
            self.too_old += 1
            return TOO_OLD
        slot = ts % self.capacity_s
        if self._stamps[slot] == ts:
            if self._seqnums[slot] != seq or not self._holds(3 * slot, reading):
                return CONFLICT  # the first reading of a second stays: a second one never replaces it silently
            self.duplicates += 1
            self.seqs.fill(seq)  # a replay of a second held already still closes its gap
            return DUPLICATE
        newest = self.last_ts is None or ts > self.last_ts
        reason = FUTURE if newest and not self.clock.plausible(ts, wall) else self.seqs.judge(seq, ts, newest)
        if reason is not None:
            if not (newest and self.seqs.contradicted(seq, ts, wall)):  # not (yet) a timeline the meter moved to
                return reason
        else:
            self.seqs.see(seq, ts)
            if newest:
                self.seqs.candidate = None  # the current timeline went on: what contradicted it was not the meter
        self._stamps[slot] = ts
        self._seqnums[slot] = seq
        row, values, energies = 3 * slot, self._values, self._energies
        ac, geyser, overall = reading.ac_w, reading.geyser_w, reading.overall_w  # W -> kW as Reading.powers_kw
        values[row] = math.nan if ac is None else ac / 1000.0
        values[row + 1] = math.nan if geyser is None else geyser / 1000.0
        values[row + 2] = math.nan if overall is None else overall / 1000.0
        energies[row] = reading.ac_kwh
        energies[row + 1] = reading.geyser_kwh
        energies[row + 2] = reading.overall_kwh
        self.received += 1
        if newest:
            self.last_ts = ts
            self.last_seq = seq
            self.clock.anchor(ts, wall)
        oldest_kept = ts if self.last_ts is None else self.last_ts - self.capacity_s + 1
        if self.first_ts is None or ts < self.first_ts:
            self.first_ts = ts
        self.first_ts = max(self.first_ts, oldest_kept)
        return STORED

    def _holds(self, row: int, reading: Reading) -> bool:
        """Whether the values at ``row`` are ``reading``'s (NaN where it has None)."""
        values, energies = self._values, self._energies
        for offset, watts in enumerate((reading.ac_w, reading.geyser_w, reading.overall_w)):
            held = values[row + offset]
            if (watts is None and not math.isnan(held)) or (watts is not None and held != watts / 1000.0):
                return False
        return (energies[row], energies[row + 1], energies[row + 2]) == (
            reading.ac_kwh,
            reading.geyser_kwh,
            reading.overall_kwh,
        )

    def load(self, ts: npt.NDArray[np.int64], columns: FloatArray, seqs: npt.NDArray[np.int64], wall: float) -> int:
        """Bulk-fill from the store: ``ts`` ascending, ``columns`` kW x3 then kWh x3, ``seqs`` (only the last
        ``capacity_s``); ``wall``: when the newest of them arrived (monotonic seconds), for the meter's clock."""
        if len(ts) == 0:
            return 0
        keep = ts > ts[-1] - self.capacity_s
        ts, columns, seqs = ts[keep], columns[keep], seqs[keep]
        slots = ts % self.capacity_s
        self.stamps[slots] = ts
        self.seqnums[slots] = seqs
        self.values[slots] = columns[:, :3]
        self.energies[slots] = columns[:, 3:]
        self.received += len(ts)
        self.first_ts = int(ts[0]) if self.first_ts is None else min(self.first_ts, int(ts[0]))
        if self.last_ts is None or int(ts[-1]) > self.last_ts:
            self.last_ts, self.last_seq = int(ts[-1]), int(seqs[-1])
            self.seqs.restore(int(seqs[-1]), int(ts[-1]), int(seqs[0]), int(ts[0]))  # the sequence goes on
            self.clock.anchor(int(ts[-1]), wall)
        return len(ts)

    def samples(self, start: int, end: int) -> tuple[FloatArray, int]:
        """Values of seconds ``[start, end)`` (NaN where absent) and how many of those seconds were received."""
        seconds = np.arange(start, end, dtype=np.int64)
        slots = seconds % self.capacity_s
        present = (self.stamps[slots] == seconds) & (seconds != _EMPTY)
        out = np.where(present[:, None], self.values[slots], np.nan)
        return out, int(present.sum())

    def last_energy(self, start: int, end: int) -> tuple[float, float, float] | None:
        """The energy registers (kWh) of the last second received in ``[start, end)``."""
        seconds = np.arange(start, end, dtype=np.int64)
        slots = seconds % self.capacity_s
        present = np.flatnonzero((self.stamps[slots] == seconds) & (seconds != _EMPTY))
        if len(present) == 0:
            return None
        ac, geyser, overall = (float(v) for v in self.energies[slots[present[-1]]])
        return ac, geyser, overall
