"""The meters' outbox: every reading is written to SQLite (WAL) before it is published, so a meter that is killed and
restarted continues its sequence and its energy registers where they were on the wire (Home Assistant's
``total_increasing`` needs registers that never go down).

One database per data directory (``<data dir>/meters.sqlite3``), shared by every simulator process that uses it
(SQLite serialises their short write transactions). Rows are kept ``retention_s`` of simulated time per meter.
Replay requests (``meters/<id>/cmd/replay``) are answered from it, and so is the backlog: each meter's
``acked_upto`` (every seq up to it was acknowledged by the broker, PUBACK) is kept beside the readings, so a restarted
meter re-sends what the broker never acknowledged, oldest first.

``OutboxWriter`` does the same writes in a thread of its own, on its own connection: the publishing loop hands it a
step's readings and sends them once their transaction has committed. A transaction's cost is mostly SQLite writing one
page per meter in it (rows are keyed by meter), and SQLite does that without holding the GIL, so with 10,000 meters
that work runs on another core instead of in the loop (docs/performance.md).
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import socket
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from config.wire import Reading, encode_reading

log = logging.getLogger(__name__)

FILE_NAME: Final = "meters.sqlite3"
DEFAULT_RETENTION_S: Final = 7 * 86_400
# A fleet's default: at about 260 bytes a reading, a week of 10,000 meters would be 1.5 TB.
FLEET_MODE_RETENTION_S: Final = 3600
MAX_RETENTION_S: Final = 366 * 86_400
PRUNE_EVERY: Final = 200  # commits between prunes; each prunes the next PRUNE_SLICE meters (in name order, wrapping)
PRUNE_SLICE: Final = 500
WRITER_CACHE_KB: Final = 131_072  # the writer's page cache (SQLite's default is 8 MB)
CHECKPOINT_S: Final = 1.0  # seconds between WAL checkpoints of the writer's database
GROUP_MAX: Final = 64  # jobs the writer thread commits together at most (those that queued up while it was busy)

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS outbox (
    meter TEXT NOT NULL, seq INTEGER NOT NULL, ts INTEGER NOT NULL,
    ac_kwh REAL NOT NULL, geyser_kwh REAL NOT NULL, overall_kwh REAL NOT NULL,
    payload BLOB NOT NULL,
    PRIMARY KEY (meter, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS acked (
    meter TEXT PRIMARY KEY, acked_upto INTEGER NOT NULL
) WITHOUT ROWID;
"""


@dataclass(frozen=True, slots=True)
class LastReading:
    """Where a meter's stream stood: its last seq and second and its energy registers then (kWh)."""

    seq: int
    ts: int
    ac_kwh: float
    geyser_kwh: float
    overall_kwh: float


class Outbox:
    """Durable record of what the meters published (and are about to)."""

    def __init__(self, data_dir: Path, retention_s: int = DEFAULT_RETENTION_S) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / FILE_NAME
        self.retention_s = retention_s
        self._prune_from = ""  # the next prune starts after this meter id
        self._conn = _connect(self.path)
        self._conn.executescript(_SCHEMA)
        self._writes = 0

    def last(self, meter: str) -> LastReading | None:
        """The meter's newest reading on record, if any."""
        row = self._conn.execute(
            "SELECT seq, ts, ac_kwh, geyser_kwh, overall_kwh FROM outbox WHERE meter = ? ORDER BY seq DESC LIMIT 1",
            (meter,),
        ).fetchone()
        return None if row is None else LastReading(int(row[0]), int(row[1]), *(float(v) for v in row[2:]))

    def acked_upto(self, meter: str) -> int | None:
        """The seq up to which every reading of ``meter`` was acknowledged by the broker (None: nothing on record).

        A meter with readings on record but no acknowledgement row (an outbox written before acknowledgements were
        kept) counts as acknowledged up to its last reading: the bridge's gap repair covers anything missing.
        """
        row = self._conn.execute("SELECT acked_upto FROM acked WHERE meter = ?", (meter,)).fetchone()
        if row is not None:
            return int(row[0])
        last = self.last(meter)
        return None if last is None else last.seq

    def record(self, readings: Sequence[Reading], acked: Mapping[str, int] | None = None) -> list[bytes]:
        """Write readings and acknowledgement marks (one transaction); return the payloads, ready to publish."""
        payloads = [encode_reading(r) for r in readings]
        if readings or acked:
            _write(self._conn, _rows_doc(readings, payloads) if readings else None, _acked_doc(acked))
            self._writes += 1
            if self._writes % PRUNE_EVERY == 0:
                self._prune_from = _prune_slice(self._conn, self.retention_s, self._prune_from)
        return payloads

    def payloads(self, meter: str, from_seq: int, to_seq: int) -> list[bytes]:
        """The published payloads of ``meter`` with seq in ``from_seq..to_seq``, oldest first (what is still held)."""
        rows = self._conn.execute(
            "SELECT payload FROM outbox WHERE meter = ? AND seq BETWEEN ? AND ? ORDER BY seq", (meter, from_seq, to_seq)
        ).fetchall()
        return [bytes(row[0]) for row in rows]

    def prune(self) -> None:
        """Forget readings older than ``retention_s`` before each meter's newest (every meter on record)."""
        after = _prune_slice(self._conn, self.retention_s, "")
        while after:
            after = _prune_slice(self._conn, self.retention_s, after)

    def close(self) -> None:
        """Close the database."""
        self._conn.close()


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


# Each transaction is one statement per table over a JSON array, so SQLite does all of it in C without the GIL
# (``executemany`` takes the GIL back for every row, which stalls the publishing loop's thread 10,000 times a second).
# Floats travel as Python's shortest round-trip text, which SQLite's parser reads back to the same double.
_INSERT_READINGS: Final = """
INSERT OR REPLACE INTO outbox
SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, CAST(value->>6 AS BLOB) FROM json_each(?)
"""
_INSERT_ACKED: Final = "INSERT OR REPLACE INTO acked SELECT value->>0, value->>1 FROM json_each(?)"


def _rows_doc(readings: Sequence[Reading], payloads: Sequence[bytes]) -> str:
    return json.dumps(
        [
            (r.meter, r.seq, r.ts, r.ac_kwh, r.geyser_kwh, r.overall_kwh, p.decode())
            for r, p in zip(readings, payloads, strict=True)
        ]
    )


def _acked_doc(acked: Mapping[str, int] | None) -> str | None:
    return json.dumps(sorted(acked.items())) if acked else None


def _write(conn: sqlite3.Connection, rows: str | None, acked: str | None) -> None:
    """One transaction: readings and acknowledgement marks as JSON documents (``_rows_doc``, ``_acked_doc``)."""
    _write_group(conn, [(rows, acked)])


def _write_group(conn: sqlite3.Connection, jobs: Sequence[tuple[str | None, str | None]]) -> None:
    """Several jobs in one transaction, in order (a meter's page is then written once for all of them)."""
    with conn:
        for rows, acked in jobs:
            if rows is not None:
                conn.execute(_INSERT_READINGS, (rows,))
            if acked is not None:
                conn.execute(_INSERT_ACKED, (acked,))


# One meter at a time, by its primary key: the newest row's ts, then the first seq still inside the retention (ts
# grows with seq for a meter, across restarts too), then the range below it. The cost is the rows deleted. (It was one
# DELETE with a correlated MAX(ts) per row, which scans the meter's rows for every row: 11.7 s for 3 meters of 8,000
# rows, and hours for a day's.)
_PRUNE_METER: Final = """
DELETE FROM outbox WHERE meter = :meter AND seq < (
    SELECT seq FROM outbox WHERE meter = :meter AND ts >= (
        SELECT ts FROM outbox WHERE meter = :meter ORDER BY seq DESC LIMIT 1
    ) - :retention_s ORDER BY seq LIMIT 1
)
"""
# The next meters after :after in name order, each found by the primary key (a skip-scan, not a scan of the table).
_METERS_AFTER: Final = """
WITH RECURSIVE m(id, n) AS (
    SELECT (SELECT meter FROM outbox WHERE meter > :after ORDER BY meter LIMIT 1), 1
    UNION ALL
    SELECT (SELECT meter FROM outbox WHERE meter > m.id ORDER BY meter LIMIT 1), n + 1 FROM m
    WHERE m.id IS NOT NULL AND n < :limit
)
SELECT id FROM m WHERE id IS NOT NULL
"""


def _prune_slice(conn: sqlite3.Connection, retention_s: int, after: str) -> str:
    """Prune the next ``PRUNE_SLICE`` meters after ``after`` (in one transaction); the last one pruned, or "" when
    the meters ran out (the next slice starts from the first again)."""
    meters = [row[0] for row in conn.execute(_METERS_AFTER, {"after": after, "limit": PRUNE_SLICE})]
    with conn:
        for meter in meters:
            conn.execute(_PRUNE_METER, {"meter": meter, "retention_s": retention_s})
    return meters[-1] if len(meters) == PRUNE_SLICE else ""


class OutboxWriter:
    """Writes to an outbox in a thread of its own; jobs commit in the order they were submitted.

    ``submit`` returns the job's number; ``committed`` is the number of jobs committed so far. After each commit a byte
    is written to ``wakeup`` (a socket to register with the loop's selector, then ``drain``). A failed write is kept in
    ``error`` and stops the writer: nothing after it is committed, and the loop must stop (raise it).
    """

    def __init__(self, outbox: Outbox) -> None:
        self.retention_s = outbox.retention_s
        self._conn = _connect(outbox.path)
        # Each meter's newest leaf page is written every second: with 10,000 meters those pages alone are 40 MB,
        # more than SQLite's default 8 MB cache, and every insert would read its page back from the file.
        self._conn.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KB}")
        # Checkpoints (copying the WAL into the database, with an fsync) run in a thread of their own, every
        # CHECKPOINT_S: done by the committing writer, as SQLite does by default, each one held up the readings
        # waiting for that commit, and so their publishing.
        self._conn.execute("PRAGMA wal_autocheckpoint=0")
        self._checkpoints = _connect(outbox.path)
        self._stopping = threading.Event()
        self._checkpointer = threading.Thread(target=self._checkpoint, name="outbox-checkpoint", daemon=True)
        self._checkpointer.start()
        self._jobs: queue.SimpleQueue[tuple[str | None, str | None] | None] = queue.SimpleQueue()
        self._submitted = 0
        self.committed = 0
        self.error: BaseException | None = None
        self._done = threading.Condition()
        self.wakeup, self._notify = socket.socketpair()
        self.wakeup.setblocking(False)
        self._notify.setblocking(False)
        self._thread = threading.Thread(target=self._run, name="outbox-writer", daemon=True)
        self._thread.start()

    def submit(self, readings: Sequence[Reading], payloads: Sequence[bytes], acked: Mapping[str, int]) -> int:
        """Queue one transaction; its job number (committed once ``committed`` reaches it). The statement's JSON is
        made here, in the caller's thread: the writer thread then runs only SQLite, which does not hold the GIL."""
        job = (_rows_doc(readings, payloads) if readings else None, _acked_doc(acked))
        self._submitted += 1
        self._jobs.put(job)
        return self._submitted

    def drain(self) -> None:
        """Empty the wake-up socket (after the selector said it is readable)."""
        with contextlib.suppress(BlockingIOError):
            while self.wakeup.recv(4096):
                pass

    def flush(self, timeout: float) -> bool:
        """Wait until every submitted job has committed (False on timeout or after an error)."""
        with self._done:
            self._done.wait_for(lambda: self.committed >= self._submitted or self.error is not None, timeout)
            return self.committed >= self._submitted and self.error is None

    def close(self, timeout: float = 30.0) -> None:
        """Commit what is queued, stop the threads and close their connections and sockets."""
        self._jobs.put(None)
        self._thread.join(timeout)
        self._stopping.set()
        self._checkpointer.join(timeout)
        if not self._checkpointer.is_alive():
            with contextlib.suppress(sqlite3.Error):
                self._checkpoints.execute("PRAGMA wal_checkpoint(PASSIVE)")
            self._checkpoints.close()
        if not self._thread.is_alive():
            self._conn.close()
        self.wakeup.close()
        self._notify.close()

    def _run(self) -> None:
        writes = 0
        prune_from = ""
        while True:
            jobs = [self._jobs.get()]
            while len(jobs) < GROUP_MAX:  # group commit: whatever queued up meanwhile goes in the same transaction
                try:
                    jobs.append(self._jobs.get_nowait())
                except queue.Empty:
                    break
            stop = None in jobs
            batch = [job for job in jobs if job is not None]
            if batch and self.error is None:  # after a failure nothing more is written: later must not overtake lost
                try:
                    _write_group(self._conn, batch)
                    writes += 1
                    if writes % PRUNE_EVERY == 0:
                        prune_from = _prune_slice(self._conn, self.retention_s, prune_from)
                except BaseException as exc:  # kept for the loop, which stops on it
                    log.exception("outbox write failed")
                    with self._done:
                        self.error = exc
                        self._done.notify_all()
                else:
                    with self._done:
                        self.committed += len(batch)
                        self._done.notify_all()
                self._wake()
            if stop:
                return

    def _checkpoint(self) -> None:
        while not self._stopping.wait(CHECKPOINT_S):
            try:
                self._checkpoints.execute("PRAGMA wal_checkpoint(PASSIVE)")  # never waits for the writer
            except sqlite3.Error:  # busy or the like: the next one catches up
                log.debug("outbox checkpoint skipped", exc_info=True)

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # full: the loop has wake-ups pending anyway; closed: stopping
            self._notify.send(b"\0")
