"""bridge.ingest.store: readings in SQLite (WAL), batched, deduplicated, pruned by event time; the minute-aggregates
mode."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np

from bridge.ingest.history import History
from bridge.ingest.store import ReadingStore
from config.wire import Reading

T0 = 1_704_067_200


def _reading(ts: int, overall_w: float | None = 1000.0, meter: str = "A") -> Reading:
    return Reading(meter, ts - T0, ts, 0.0, 0.0, overall_w, 0.0, 0.0, (ts - T0) / 3600)


def test_readings_survive_and_reload_into_a_new_history(tmp_path: Path) -> None:
    store = ReadingStore(tmp_path, retention_s=86_400)
    history = History(3600, store)
    for ts in range(T0, T0 + 120):
        history.add(_reading(ts, None if ts == T0 + 7 else 500.0 + ts - T0))
    history.add(_reading(T0 + 3))  # a duplicate: neither the ring nor the disk takes it twice
    assert store.flush()
    store.close()
    journal = sqlite3.connect(tmp_path / "bridge.sqlite3").execute("PRAGMA journal_mode").fetchone()[0]
    assert journal == "wal"

    again = History(3600, ReadingStore(tmp_path, retention_s=86_400))
    assert again.load() == 120
    assert again.watermark("A") == T0 + 120
    values, present = again.samples("A", T0, T0 + 10)
    assert present == 10
    assert np.isnan(values[7, 2])  # a null stays a null
    assert values[3, 2] == 0.503
    assert again.summary("A").last_seq == 119
    assert again.last_energy("A", T0, T0 + 120) == (0.0, 0.0, 119 / 3600)


def test_a_long_reload_reports_its_progress(tmp_path: Path) -> None:
    """A reload that takes long says how far along it is every few seconds; a quick one says nothing."""
    store = ReadingStore(tmp_path, retention_s=86_400)
    history = History(3600, store)
    meters = [f"A-{n:04d}" for n in range(1, 41)]
    for meter in meters:
        for ts in range(T0, T0 + 3):
            history.add(_reading(ts, meter=meter))
    assert store.flush()
    store.close()

    ticks = iter(range(10_000))
    slow_store = ReadingStore(tmp_path, retention_s=86_400)
    slow = History(3600, slow_store, clock=lambda: float(next(ticks)))  # 1 s a call
    lines: list[str] = []
    assert slow.load(lines.append) == 120
    slow_store.close()
    assert lines == [f"history: reloaded {n}/40 meters, 1.0/s ({3 * n} readings)" for n in range(5, 41, 5)]

    quick: list[str] = []
    quick_store = ReadingStore(tmp_path, retention_s=86_400)
    assert History(3600, quick_store).load(quick.append) == 120
    quick_store.close()
    assert quick == []


def test_seconds_older_than_memory_come_from_disk(tmp_path: Path) -> None:
    store = ReadingStore(tmp_path, retention_s=86_400)
    history = History(60, store)  # memory holds one minute
    for ts in range(T0, T0 + 300):
        history.add(_reading(ts, 1000.0 + ts - T0))
    assert store.flush()
    values, present = history.samples("A", T0, T0 + 300)
    assert present == 300
    assert values[:, 2].tolist() == [(1000.0 + i) / 1000 for i in range(300)]
    assert store.oldest("A") == T0


def test_retention_prunes_by_event_time(tmp_path: Path) -> None:
    wall = [0.0]
    store = ReadingStore(tmp_path, retention_s=3600, clock=lambda: wall[0])
    store.put(_reading(T0))
    assert store.flush()
    wall[0] = 7200.0  # two hours later (speed 1)
    for ts in (T0 + 100, T0 + 7200):
        store.put(_reading(ts))
    assert store.flush()
    store._prune()
    assert store.oldest("A") == T0 + 7200  # both early readings are more than an hour before the newest


def test_one_reading_far_in_the_future_never_prunes_what_is_stored(tmp_path: Path) -> None:
    """Retention counts back from the bridge's own clock, not from the newest ts a meter claims: a reading a year
    ahead (forged) would otherwise have deleted every row of the meter at the next prune."""
    wall = [0.0]
    store = ReadingStore(tmp_path, retention_s=3600, clock=lambda: wall[0])
    for ts in range(T0, T0 + 600):
        store.put(_reading(ts))
    store.put(_reading(T0 + 365 * 86_400))
    assert store.flush()
    wall[0] = 600.0
    store._prune()
    assert store.oldest("A") == T0  # nothing is an hour older than where the meter can really be
    assert store.cutoff("A", 600.0) == T0 + 600 - 3600
    wall[0] = 3600.0 + 300.0  # an hour later, the oldest 300 s are due, as by the real readings
    store._prune()
    assert store.oldest("A") == T0 + 300


def test_aggregates_mode_keeps_minutes_only(tmp_path: Path) -> None:
    store = ReadingStore(tmp_path, retention_s=86_400, mode="aggregates")
    for ts in range(T0, T0 + 120):
        store.put(_reading(ts, None if ts < T0 + 10 else 2000.0))
    assert store.flush()
    rows = (
        sqlite3.connect(tmp_path / "bridge.sqlite3")
        .execute("SELECT start, overall_sum, overall_n, seconds, overall_kwh FROM minutes ORDER BY start")
        .fetchall()
    )
    assert rows == [(T0, 100.0, 50, 60, 59 / 3600), (T0 + 60, 120.0, 60, 60, 119 / 3600)]
    assert store.meters() == [("A", T0 + 119)]
    assert list(store.recent("A", T0)) == []  # no seconds on disk in this mode
