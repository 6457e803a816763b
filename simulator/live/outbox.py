"""The meters' outbox: what reproduces every reading a meter published (or may have), kept in SQLite (WAL).

A live meter's readings are a pure function of its model (seed, profile, climate, time zone, injected errors: a
*run*'s settings) and its state (seq, next second, energy registers) at any earlier point of the same run: stepping a
meter from a checkpoint gives the very bytes it published. So the outbox keeps, instead of every reading:

- ``runs``: each simulator process's model (opaque JSON, ``simulator.live.reproduce.Model``) and its *horizon*: a
  simulated second that no meter of the run has published a reading at or after. The loop advances it (a one-row
  transaction, ``HORIZON_LEAD_S`` of wall time ahead) before it steps past it: **what is needed to reproduce a reading
  exactly is on disk before the reading is on the wire.**
- ``checkpoints``: per meter, its state at the start of each run and every ``CHECKPOINT_S`` of wall time (a tenth
  of the fleet at a time, one small transaction each), with ``acked_upto`` (every seq up to it was acknowledged by
  the broker, PUBACK, when the checkpoint was taken) and whether it is *closed* (written at a clean stop: the meter
  produced nothing past it). Energy registers are kept as the bits of their doubles (exact).

A meter's stream from seq ``s`` is reproduced from its newest checkpoint at or before ``s`` by its run's model, up to
the next checkpoint (a later run starts a new segment) and never past what the run produced. A killed meter restarts
from its newest checkpoint stepped up to its run's horizon: every seq it may have published is accounted for, and what
the broker had not acknowledged is sent again (``simulator.live.reproduce``). Checkpoints are kept ``retention_s`` of
simulated time per meter (always the newest).

One database per data directory (``<data dir>/meters.sqlite3``), shared by every simulator process that uses it.
``OutboxWriter`` writes checkpoints and horizons in a thread of its own, on its own connection: nothing is written per
reading, and the publishing loop never waits for a commit unless its horizon runs out.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import socket
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from simulator.live.checkpoint import COLUMNS, DEFAULT_RETENTION_S, Checkpoint, Run, checkpoint_of_row, row_of
from simulator.meters.meter import MeterState

log = logging.getLogger(__name__)

FILE_NAME: Final = "meters.sqlite3"
PRUNE_SLICE: Final = 100  # meters pruned after each checkpoint job (in name order, wrapping)

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS runs (run INTEGER PRIMARY KEY, model TEXT NOT NULL, horizon INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (
    meter TEXT NOT NULL, seq INTEGER NOT NULL, next_ts INTEGER NOT NULL,
    ac_bits INTEGER NOT NULL, geyser_bits INTEGER NOT NULL, overall_bits INTEGER NOT NULL,
    acked_upto INTEGER, run INTEGER NOT NULL, closed INTEGER NOT NULL,
    PRIMARY KEY (meter, seq)
) WITHOUT ROWID;
"""


class Outbox:
    """Durable record of what reproduces the meters' readings (read side, and the start of a run)."""

    def __init__(self, data_dir: Path, retention_s: int = DEFAULT_RETENTION_S) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / FILE_NAME
        self.retention_s = retention_s
        self._conn = _connect(self.path)
        self._conn.executescript(_SCHEMA)
        self._runs: dict[int, Run] = {}  # runs other than the current one never change but for their horizon
        self.run: Run | None = None  # this process's run, once begun
        self._legacy: bool | None = None  # whether the tables of an earlier version's outbox are there

    def latest(self, meter: str) -> Checkpoint | None:
        """The meter's newest checkpoint, if any."""
        row = self._conn.execute(
            f"SELECT {COLUMNS} FROM checkpoints WHERE meter = ? ORDER BY seq DESC LIMIT 1", (meter,)
        ).fetchone()
        return None if row is None else checkpoint_of_row(row)

    def at_or_before(self, meter: str, seq: int) -> Checkpoint | None:
        """The meter's newest checkpoint at or before ``seq``."""
        row = self._conn.execute(
            f"SELECT {COLUMNS} FROM checkpoints WHERE meter = ? AND seq <= ? ORDER BY seq DESC LIMIT 1", (meter, seq)
        ).fetchone()
        return None if row is None else checkpoint_of_row(row)

    def after(self, meter: str, seq: int) -> Checkpoint | None:
        """The meter's oldest checkpoint after ``seq``."""
        row = self._conn.execute(
            f"SELECT {COLUMNS} FROM checkpoints WHERE meter = ? AND seq > ? ORDER BY seq LIMIT 1", (meter, seq)
        ).fetchone()
        return None if row is None else checkpoint_of_row(row)

    def legacy_last(self, meter: str) -> tuple[MeterState, int | None] | None:
        """Where a meter stood in an outbox written by an earlier version (every reading kept, table ``outbox``): the
        state after its last reading, and its ``acked_upto``; None if there is no such table or row. Those readings
        are not reproducible (no checkpoint): a restart continues after them."""
        if self._legacy is None:
            self._legacy = (
                self._conn.execute(
                    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ('outbox', 'acked')"
                ).fetchone()[0]
                == 2
            )
        if not self._legacy:
            return None
        row = self._conn.execute(
            "SELECT seq, ts, ac_kwh, geyser_kwh, overall_kwh FROM outbox WHERE meter = ? ORDER BY seq DESC LIMIT 1",
            (meter,),
        ).fetchone()
        if row is None:
            return None
        acked = self._conn.execute("SELECT acked_upto FROM acked WHERE meter = ?", (meter,)).fetchone()
        state = MeterState(meter, int(row[0]) + 1, int(row[1]) + 1, float(row[2]), float(row[3]), float(row[4]))
        return state, int(row[0]) if acked is None else int(acked[0])

    def meters(self) -> list[str]:
        """Every meter with a checkpoint, in name order."""
        return _meters_after(self._conn, "", -1)

    def run_of(self, run: int) -> Run:
        """A run's model and its horizon as committed now (KeyError if unknown)."""
        if self.run is not None and run == self.run.run:
            return self.run
        found = self._runs.get(run)
        row = self._conn.execute("SELECT model, horizon FROM runs WHERE run = ?", (run,)).fetchone()
        if row is None:
            raise KeyError(run)
        if found is None or found.horizon != int(row[1]):
            found = Run(run, str(row[0]), int(row[1]))
            self._runs[run] = found
        return found

    def begin_run(self, model: str, horizon: int, checkpoints: Sequence[Checkpoint]) -> Run:
        """Record this process's run and its meters' starting checkpoints (their ``run`` is replaced), in one
        committed transaction: before any of them publishes. The run is kept in ``run``."""
        with self._conn:
            cursor = self._conn.execute("INSERT INTO runs (model, horizon) VALUES (?, ?)", (model, horizon))
            run = int(cursor.lastrowid or 0)
            self._conn.execute(_INSERT_CHECKPOINTS, (_checkpoints_doc(checkpoints, run),))
        self.run = Run(run, model, horizon)
        return self.run

    def write_checkpoints(self, checkpoints: Sequence[Checkpoint]) -> None:
        """Write checkpoints now (one transaction; tests and tools: the loop uses ``OutboxWriter``)."""
        with self._conn:
            self._conn.execute(_INSERT_CHECKPOINTS, (_checkpoints_doc(checkpoints),))

    def prune(self) -> None:
        """Forget checkpoints older than ``retention_s`` before each meter's newest (every meter on record), and runs
        no checkpoint refers to."""
        after = _prune_slice(self._conn, self.retention_s, "")
        while after:
            after = _prune_slice(self._conn, self.retention_s, after)
        with self._conn:
            self._conn.execute("DELETE FROM runs WHERE run NOT IN (SELECT DISTINCT run FROM checkpoints)")

    def close(self) -> None:
        """Close the database."""
        self._conn.close()


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


# One statement over a JSON array: SQLite does the whole insert in C without the GIL (``executemany`` would take it
# back for every row, stalling the publishing loop). Registers travel as the integer bits of their doubles: exact.
_INSERT_CHECKPOINTS: Final = f"""
INSERT OR REPLACE INTO checkpoints ({COLUMNS})
SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, value->>6, value->>7, value->>8
FROM json_each(?)
"""


def _checkpoints_doc(checkpoints: Sequence[Checkpoint], run: int | None = None) -> str:
    return json.dumps([row_of(c, run) for c in checkpoints])


# Pruning a slice of meters: the first meters after :after in name order (each found by the primary key, a
# skip-scan), with each one's cut: its first checkpoint still inside the retention before its newest (the newest always
# stays: a meter continues from it). Then every checkpoint of those meters below its cut goes. A few statements that
# return at most one row: SQLite runs each without the GIL. (A statement per meter, or a row per meter, takes the GIL
# back each time, and each time the publishing loop has to hand it over: readings were late by up to 400 ms for seconds
# after each round. A correlated DELETE recomputing the cut for every row cost 1.6 s per 100 meters.)
_PRUNE_CUTS: Final = """
WITH RECURSIVE m(id, n) AS (
    SELECT (SELECT meter FROM checkpoints WHERE meter > :after ORDER BY meter LIMIT 1), 1
    UNION ALL
    SELECT (SELECT meter FROM checkpoints WHERE meter > m.id ORDER BY meter LIMIT 1), n + 1 FROM m
    WHERE m.id IS NOT NULL AND n < :limit
)
INSERT INTO temp.prune_cut (meter, seq)
SELECT id, (
    SELECT c.seq FROM checkpoints AS c WHERE c.meter = m.id AND c.next_ts >= (
        SELECT n.next_ts FROM checkpoints AS n WHERE n.meter = m.id ORDER BY n.seq DESC LIMIT 1
    ) - :retention_s ORDER BY c.seq LIMIT 1
) FROM m WHERE id IS NOT NULL
"""
_PRUNE_BELOW_CUTS: Final = """
DELETE FROM checkpoints WHERE meter IN (SELECT meter FROM temp.prune_cut)
AND seq < (SELECT p.seq FROM temp.prune_cut AS p WHERE p.meter = checkpoints.meter)
"""
# Every meter after :after in name order (-1: no limit), each by the primary key.
_METERS_AFTER: Final = """
WITH RECURSIVE m(id, n) AS (
    SELECT (SELECT meter FROM checkpoints WHERE meter > :after ORDER BY meter LIMIT 1), 1
    UNION ALL
    SELECT (SELECT meter FROM checkpoints WHERE meter > m.id ORDER BY meter LIMIT 1), n + 1 FROM m
    WHERE m.id IS NOT NULL AND (:limit < 0 OR n < :limit)
)
SELECT id FROM m WHERE id IS NOT NULL
"""


def _meters_after(conn: sqlite3.Connection, after: str, limit: int) -> list[str]:
    """The meters after ``after`` in name order, at most ``limit`` (-1: all)."""
    return [str(row[0]) for row in conn.execute(_METERS_AFTER, {"after": after, "limit": limit})]


def _prune_slice(conn: sqlite3.Connection, retention_s: int, after: str) -> str:
    """Prune the next ``PRUNE_SLICE`` meters after ``after`` (in one transaction); the last one pruned, or "" when
    the meters ran out (the next slice starts from the first again)."""
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS prune_cut (meter TEXT PRIMARY KEY, seq INTEGER) WITHOUT ROWID")
    with conn:
        conn.execute("DELETE FROM temp.prune_cut")
        conn.execute(_PRUNE_CUTS, {"after": after, "limit": PRUNE_SLICE, "retention_s": retention_s})
        conn.execute(_PRUNE_BELOW_CUTS)
        last, count = conn.execute("SELECT MAX(meter), COUNT(*) FROM temp.prune_cut").fetchone()
    return str(last) if count == PRUNE_SLICE else ""


States = Sequence[tuple[MeterState, int | None]]  # each meter's state and acked_upto
Job = tuple[int | None, States, bool]  # a horizon to move to, or a checkpoint round (closed or not)


class OutboxWriter:
    """Writes checkpoints and the run's horizon in a thread of its own; jobs commit in the order they were submitted.

    ``horizon`` is the run's horizon as committed (the loop publishes nothing at or past it). After each commit a byte
    is written to ``wakeup`` (a socket to register with the loop's selector, then ``drain``). A failed write is kept in
    ``error`` and stops the writer: nothing after it is committed, and the loop must stop (raise it).
    """

    def __init__(self, outbox: Outbox) -> None:
        if outbox.run is None:
            raise ValueError("begin the run first (Outbox.begin_run)")
        self.run = outbox.run.run
        self.retention_s = outbox.retention_s
        self.horizon = outbox.run.horizon
        self._conn = _connect(outbox.path)
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._submitted = 0
        self.committed = 0
        self.error: BaseException | None = None
        self._done = threading.Condition()
        self.wakeup, self._notify = socket.socketpair()
        self.wakeup.setblocking(False)
        self._notify.setblocking(False)
        self._thread = threading.Thread(target=self._run, name="outbox-writer", daemon=True)
        self._thread.start()

    def submit_checkpoints(self, states: States, *, closed: bool = False) -> int:
        """Queue a checkpoint round of this run (one transaction): each meter's state and ``acked_upto``; its job
        number. The statement's JSON is made in the writer's thread, not the caller's."""
        return self._submit((None, states, closed))

    def submit_horizon(self, horizon: int) -> int:
        """Queue moving the run's horizon to ``horizon`` (never back); ``horizon`` changes once it committed."""
        return self._submit((horizon, (), False))

    def _submit(self, job: Job) -> int:
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
        """Commit what is queued, stop the thread and close its connection and sockets."""
        self._jobs.put(None)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self._conn.close()
        self.wakeup.close()
        self._notify.close()

    def _run(self) -> None:
        prune_from = ""
        while True:
            job = self._jobs.get()
            if job is None:
                return
            if self.error is not None:  # after a failure nothing more is written: later must not overtake lost
                continue
            horizon, states, closed = job
            try:
                if horizon is not None:
                    with self._conn:
                        self._conn.execute(
                            "UPDATE runs SET horizon = MAX(horizon, ?) WHERE run = ?", (horizon, self.run)
                        )
                    with self._done:
                        self.horizon = max(self.horizon, horizon)
                else:
                    doc = _checkpoints_doc([Checkpoint.of(st, acked, self.run, closed=closed) for st, acked in states])
                    with self._conn:
                        self._conn.execute(_INSERT_CHECKPOINTS, (doc,))
                    prune_from = _prune_slice(self._conn, self.retention_s, prune_from)
            except BaseException as exc:  # kept for the loop, which stops on it
                log.exception("outbox write failed")
                with self._done:
                    self.error = exc
                    self._done.notify_all()
            else:
                with self._done:
                    self.committed += 1
                    self._done.notify_all()
            self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # full: the loop has wake-ups pending anyway; closed: stopping
            self._notify.send(b"\0")
