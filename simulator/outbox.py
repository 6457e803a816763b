"""The meters' outbox: every reading is written to SQLite (WAL) before it is published, so a meter that is killed and
restarted continues its sequence and its energy registers where they were on the wire (Home Assistant's
``total_increasing`` needs registers that never go down).

One database per data directory (``<data dir>/meters.sqlite3``), shared by every simulator process that uses it
(SQLite serialises their short write transactions). Rows are kept ``retention_s`` of simulated time per meter.
Replay requests (``meters/<id>/cmd/replay``) are answered from it, and so is the backlog: each meter's
``acked_upto`` (every seq up to it was acknowledged by the broker, PUBACK) is kept beside the readings, so a restarted
meter re-sends what the broker never acknowledged, oldest first.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from config.wire import Reading, encode_reading

FILE_NAME: Final = "meters.sqlite3"
DEFAULT_RETENTION_S: Final = 7 * 86_400
PRUNE_EVERY: Final = 3600  # passes of the publishing loop between prunes

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
        self._conn = sqlite3.connect(str(self.path), timeout=30)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
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
            with self._conn:
                self._conn.executemany(
                    "INSERT OR REPLACE INTO outbox VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (r.meter, r.seq, r.ts, r.ac_kwh, r.geyser_kwh, r.overall_kwh, p)
                        for r, p in zip(readings, payloads, strict=True)
                    ],
                )
                if acked:
                    self._conn.executemany("INSERT OR REPLACE INTO acked VALUES (?, ?)", sorted(acked.items()))
            self._writes += 1
            if self._writes % PRUNE_EVERY == 0:
                self.prune()
        return payloads

    def payloads(self, meter: str, from_seq: int, to_seq: int) -> list[bytes]:
        """The published payloads of ``meter`` with seq in ``from_seq..to_seq``, oldest first (what is still held)."""
        rows = self._conn.execute(
            "SELECT payload FROM outbox WHERE meter = ? AND seq BETWEEN ? AND ? ORDER BY seq", (meter, from_seq, to_seq)
        ).fetchall()
        return [bytes(row[0]) for row in rows]

    def prune(self) -> None:
        """Forget readings older than ``retention_s`` before each meter's newest."""
        with self._conn:
            self._conn.execute(
                "DELETE FROM outbox WHERE ts < (SELECT MAX(ts) FROM outbox AS o WHERE o.meter = outbox.meter) - ?",
                (self.retention_s,),
            )

    def close(self) -> None:
        """Close the database."""
        self._conn.close()
