"""Durable history: every valid reading in SQLite (WAL mode) under the data directory, batched writes, retention.

The in-memory rings of ``bridge.ingest.history`` serve the hot path (the last ``FLEET_HISTORY_S``); this store is what
survives a restart (the rings are reloaded from it) and answers for seconds older than the rings hold.

Modes (``FLEET_STORE``): ``readings`` keeps every reading for ``FLEET_RETENTION_S`` (by each meter's event time);
``aggregates`` (for large fleets) keeps only 60 s windows: per channel the sum and count of the seconds with a value,
and the energy registers at the window's last second. Then only the rings hold seconds, and a restart starts them
empty.

Writes go through a buffer to one writer thread, so ingest never waits on the disk. The writer sleeps until a reading
comes, commits at most once every ``GATHER_S`` (sooner for ``BATCH`` waiting rows, a ``flush`` or ``close``) whatever
has come by then, ``BATCH`` rows a transaction: a reading is on disk within ``GATHER_S`` of its arrival, or as soon as
the disk keeps up. Committing each reading as it came made the writer wake for every one of them, and each small
transaction and each wake-up took the GIL from the MQTT thread: that about halved ingest through MQTT
(``bench/ingest.py``, single form: 110-130 us of CPU a reading, not 60-70). Reads open their own connection (WAL lets
them run beside the writer).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from config.wire import Reading

log = logging.getLogger(__name__)

FILE_NAME: Final = "bridge.sqlite3"
FLUSH_S: Final = 0.5
BATCH: Final = 5000
GATHER_S: Final = 0.05  # at most one commit per GATHER_S, unless BATCH rows wait (see the module's docstring)
AGG_S: Final = 60
PRUNE_EVERY_S: Final = 60.0
QUEUE_MAX: Final = 200_000  # readings waiting for the disk; past it ingest drops to memory-only and counts it

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS readings (
    meter TEXT NOT NULL, ts INTEGER NOT NULL, seq INTEGER NOT NULL,
    ac_w REAL, geyser_w REAL, overall_w REAL,
    ac_kwh REAL NOT NULL, geyser_kwh REAL NOT NULL, overall_kwh REAL NOT NULL,
    PRIMARY KEY (meter, ts)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS minutes (
    meter TEXT NOT NULL, start INTEGER NOT NULL,
    ac_sum REAL NOT NULL, ac_n INTEGER NOT NULL, geyser_sum REAL NOT NULL, geyser_n INTEGER NOT NULL,
    overall_sum REAL NOT NULL, overall_n INTEGER NOT NULL, seconds INTEGER NOT NULL,
    ac_kwh REAL, geyser_kwh REAL, overall_kwh REAL, last_ts INTEGER NOT NULL,
    PRIMARY KEY (meter, start)
) WITHOUT ROWID;
"""

_INSERT_READING: Final = "INSERT OR IGNORE INTO readings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
_UPSERT_MINUTE: Final = """
INSERT INTO minutes VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?)
ON CONFLICT (meter, start) DO UPDATE SET
    ac_sum = ac_sum + excluded.ac_sum, ac_n = ac_n + excluded.ac_n,
    geyser_sum = geyser_sum + excluded.geyser_sum, geyser_n = geyser_n + excluded.geyser_n,
    overall_sum = overall_sum + excluded.overall_sum, overall_n = overall_n + excluded.overall_n,
    seconds = seconds + 1,
    ac_kwh = CASE WHEN excluded.last_ts >= last_ts THEN excluded.ac_kwh ELSE ac_kwh END,
    geyser_kwh = CASE WHEN excluded.last_ts >= last_ts THEN excluded.geyser_kwh ELSE geyser_kwh END,
    overall_kwh = CASE WHEN excluded.last_ts >= last_ts THEN excluded.overall_kwh ELSE overall_kwh END,
    last_ts = MAX(last_ts, excluded.last_ts)
"""


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process crashes, fast
    return conn


class ReadingStore:
    """SQLite history of readings (or of minute aggregates), written by one background thread."""

    def __init__(
        self,
        data_dir: Path,
        retention_s: int,
        mode: str = "readings",
        speed: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if mode not in ("readings", "aggregates"):
            raise ValueError(f"unknown store mode {mode!r}")
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / FILE_NAME
        files = [path for path in (self.path, self.path.with_name(FILE_NAME + "-wal")) if path.exists()]
        self._written_before = max((path.stat().st_mtime for path in files), default=time.time())
        self.retention_s = retention_s
        self.mode = mode
        self.speed = speed  # simulated seconds per wall second: how fast retention may move (see cutoff)
        self._clock = clock
        self.written = 0
        self.dropped = 0
        self.failed = 0  # readings whose write failed (logged): in memory, never on disk
        # An RLock, not a Lock: a Condition checks that its caller holds the lock with the lock's ``_is_owned``, which
        # a Lock lacks; the fallback (a non-blocking acquire that fails) makes gevent's lock yield to every runnable
        # greenlet first. Under the gevent worker that put the MQTT thread, inside ``put``, behind every SSE stream a
        # window had just woken (0.4 s at 10,000 streams) and behind a storm of connects (seconds): windows were late.
        self._lock = threading.RLock()
        self._wanted = threading.Condition(self._lock)  # the writer waits here for readings, a flush or close
        self._buffer: list[Reading] = []  # readings not yet taken by the writer
        self._closing = False
        self._hurry = 0  # flush() callers waiting: the writer does not gather then
        self._conn = _connect(self.path)
        self._conn.executescript(_SCHEMA)
        self._read_lock = threading.Lock()
        self._reader = _connect(self.path)
        self._newest: dict[str, int] = {}
        self._first: dict[str, tuple[int, float]] = {}  # meter -> (second of its first write here, monotonic time)
        self._flushed = threading.Condition(self._lock)
        self._pending = 0  # buffered or being written
        self._thread = threading.Thread(target=self._run, name="store-writer", daemon=True)
        self._thread.start()

    def put(self, reading: Reading) -> None:
        """Queue a reading for the disk (never blocks; counts a drop if the disk is far behind)."""
        with self._lock:
            if len(self._buffer) >= QUEUE_MAX:
                self.dropped += 1
                return
            self._buffer.append(reading)
            self._pending += 1
            if len(self._buffer) in (1, BATCH):  # the writer may be asleep on an empty buffer, or gathering
                self._wanted.notify()

    def pending(self) -> int:
        """Readings queued for the disk or being written now (the writer's backlog)."""
        with self._lock:
            return self._pending

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is committed; False on timeout."""
        with self._lock:
            self._hurry += 1
            self._wanted.notify()
            try:
                return self._flushed.wait_for(lambda: self._pending == 0, timeout)
            finally:
                self._hurry -= 1

    def close(self) -> None:
        """Commit what is queued and stop the writer."""
        with self._lock:
            self._closing = True
            self._wanted.notify()
        self._thread.join(timeout=30)
        self._conn.close()
        with self._read_lock:
            self._reader.close()

    def _run(self) -> None:
        last_prune = last_commit = 0.0
        while True:
            with self._lock:
                if not self._buffer and not self._closing:
                    self._wanted.wait(FLUSH_S)
                gather = last_commit + GATHER_S - time.monotonic()
                if gather > 0 and not self._closing and not self._hurry and len(self._buffer) < BATCH:
                    self._wanted.wait(gather)
                taken, self._buffer = self._buffer, []
                last_commit = time.monotonic()
                closing = self._closing
            for start in range(0, len(taken), BATCH):
                self._write(taken[start : start + BATCH])
            if closing:
                return
            now = time.monotonic()
            if now - last_prune >= PRUNE_EVERY_S:
                self._prune()
                last_prune = now

    def _write(self, batch: list[Reading]) -> None:
        if not batch:
            return
        try:
            with self._conn:
                if self.mode == "readings":
                    self._conn.executemany(_INSERT_READING, (_row(r) for r in batch))
                else:
                    self._conn.executemany(_UPSERT_MINUTE, (_minute_row(r) for r in batch))
            now = self._clock()
            for reading in batch:
                if reading.ts > self._newest.get(reading.meter, -1):
                    self._newest[reading.meter] = reading.ts
                self._first.setdefault(reading.meter, (reading.ts, now))
            self.written += len(batch)
        except sqlite3.Error:
            self.failed += len(batch)
            log.exception("could not write %d readings to %s", len(batch), self.path)
        finally:
            with self._flushed:
                self._pending -= len(batch)
                self._flushed.notify_all()

    def cutoff(self, meter: str, now: float) -> int | None:
        """The second before which ``meter``'s rows go at monotonic time ``now``: ``retention_s`` before its newest
        second, but never later than the bridge's own clock has run since it first wrote for the meter (at ``speed``):
        a reading's claim about time can never delete what is stored (None: nothing written for it here yet)."""
        newest, first = self._newest.get(meter), self._first.get(meter)
        if newest is None or first is None:
            return None
        first_ts, first_wall = first
        return min(newest, int(first_ts + max(0.0, now - first_wall) * self.speed)) - self.retention_s

    def _prune(self) -> None:
        table, column = ("readings", "ts") if self.mode == "readings" else ("minutes", "start")
        now = self._clock()
        try:
            with self._conn:
                for meter in list(self._newest):
                    cutoff = self.cutoff(meter, now)
                    if cutoff is not None:
                        self._conn.execute(f"DELETE FROM {table} WHERE meter = ? AND {column} < ?", (meter, cutoff))
        except sqlite3.Error:
            log.exception("could not prune %s", self.path)

    def recent(self, meter: str, since_ts: int) -> Iterator[Reading]:
        """Readings of ``meter`` from ``since_ts`` on, oldest first (empty in aggregates mode)."""
        if self.mode != "readings":
            return iter(())
        with self._read_lock:
            rows = self._reader.execute(
                "SELECT * FROM readings WHERE meter = ? AND ts >= ? ORDER BY ts", (meter, since_ts)
            ).fetchall()
        return (_reading(row) for row in rows)

    def recent_arrays(
        self, meter: str, since_ts: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        """``(ts, columns, seqs)`` of ``meter`` from ``since_ts`` on: columns are kW x3 then kWh x3, NaN = none."""
        empty = np.zeros(0, dtype=np.int64)
        if self.mode != "readings":
            return empty, np.zeros((0, 6)), empty
        with self._read_lock:
            rows = self._reader.execute(
                "SELECT ts, ac_w / 1000.0, geyser_w / 1000.0, overall_w / 1000.0, ac_kwh, geyser_kwh, overall_kwh, seq"
                " FROM readings WHERE meter = ? AND ts >= ? ORDER BY ts",
                (meter, since_ts),
            ).fetchall()
        if not rows:
            return empty, np.zeros((0, 6)), empty
        table = np.array(rows, dtype=np.float64)  # NULL -> nan; seqs below 2**53 are exact
        return table[:, 0].astype(np.int64), table[:, 1:7], table[:, 7].astype(np.int64)

    def last_write(self) -> float:
        """When the store's files had last been written before this store opened them (epoch seconds; the time it
        opened them if they did not exist)."""
        return self._written_before

    def oldest(self, meter: str) -> int | None:
        """The oldest second of ``meter`` on disk (readings mode), None if none."""
        if self.mode != "readings":
            return None
        with self._read_lock:
            row = self._reader.execute("SELECT MIN(ts) FROM readings WHERE meter = ?", (meter,)).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def meters(self) -> list[tuple[str, int]]:
        """Every meter on disk with its newest second."""
        table, column = ("readings", "ts") if self.mode == "readings" else ("minutes", "last_ts")
        with self._read_lock:
            rows = self._reader.execute(f"SELECT meter, MAX({column}) FROM {table} GROUP BY meter").fetchall()
        return [(str(meter), int(newest)) for meter, newest in rows]

    def samples(self, meter: str, start: int, end: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
        """Powers (kW, NaN = none) of seconds ``[start, end)`` and which seconds were received (readings mode)."""
        out = np.full((max(end - start, 0), 3), np.nan)
        present = np.zeros(max(end - start, 0), dtype=bool)
        if self.mode != "readings" or end <= start:
            return out, present
        with self._read_lock:
            rows = self._reader.execute(
                "SELECT ts, ac_w, geyser_w, overall_w FROM readings WHERE meter = ? AND ts >= ? AND ts < ?",
                (meter, start, end),
            ).fetchall()
        for ts, *powers in rows:
            out[ts - start] = [np.nan if p is None else p / 1000.0 for p in powers]
            present[ts - start] = True
        return out, present


def _row(r: Reading) -> tuple[object, ...]:
    return (r.meter, r.ts, r.seq, r.ac_w, r.geyser_w, r.overall_w, r.ac_kwh, r.geyser_kwh, r.overall_kwh)


def _minute_row(r: Reading) -> tuple[object, ...]:
    def part(watts: float | None) -> tuple[float, int]:
        return (0.0, 0) if watts is None else (watts / 1000.0, 1)

    ac, geyser, overall = part(r.ac_w), part(r.geyser_w), part(r.overall_w)
    start = r.ts - r.ts % AGG_S
    return (r.meter, start, *ac, *geyser, *overall, r.ac_kwh, r.geyser_kwh, r.overall_kwh, r.ts)


def _reading(row: tuple[Any, ...]) -> Reading:
    meter, ts, seq, ac, geyser, overall, ac_kwh, geyser_kwh, overall_kwh = row
    return Reading(str(meter), int(seq), int(ts), ac, geyser, overall, ac_kwh, geyser_kwh, overall_kwh)
