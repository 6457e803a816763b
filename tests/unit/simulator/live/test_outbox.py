"""simulator.live.outbox: runs, horizons and checkpoints survive the process; registers come back as the same doubles;
the writer commits in order and stops at the first failure; checkpoints are kept for the retention of each meter."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from simulator.live import outbox as outbox_module
from simulator.live.checkpoint import Checkpoint
from simulator.live.outbox import Outbox, OutboxWriter
from simulator.meters.meter import MeterState

T0 = 1_704_067_200
# Doubles that a decimal text round trip might not give back bit for bit; registers must come back exactly.
AWKWARD = (0.1 + 0.2, 1e-300, 5e-324, 123456.78901234567, 2.0**-1074 * 3, 0.0)


def _state(meter: str, seq: int, ts: int, kwh: float = 1.0) -> MeterState:
    return MeterState(meter, seq, ts, kwh, kwh / 3, kwh * 2)


def test_a_run_and_its_checkpoints_are_on_disk_with_exact_registers(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    starts = [
        Checkpoint.of(_state(f"A-{i:04d}", 10 * i, T0 + i, kwh), i - 1 if i else None, 0)
        for i, kwh in enumerate(AWKWARD)
    ]
    run = outbox.begin_run('{"model": 1}', T0 + 2, starts)
    outbox.close()

    again = Outbox(tmp_path)  # another process: what is committed is there
    assert again.run_of(run.run) == run
    for i, kwh in enumerate(AWKWARD):
        found = again.latest(f"A-{i:04d}")
        assert found is not None
        assert found == Checkpoint(f"A-{i:04d}", 10 * i, T0 + i, kwh, kwh / 3, kwh * 2, i - 1 if i else None, run.run)
        assert found.state == _state(f"A-{i:04d}", 10 * i, T0 + i, kwh)
    assert again.latest("B") is None
    assert again.meters() == [f"A-{i:04d}" for i in range(len(AWKWARD))]
    again.close()


def test_checkpoints_are_found_around_a_seq(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    run = outbox.begin_run("{}", T0, [Checkpoint.of(_state("A", 0, T0), None, 0)])
    outbox.write_checkpoints([Checkpoint.of(_state("A", seq, T0 + seq), seq - 3, run.run) for seq in (10, 20, 30)])
    at = outbox.at_or_before("A", 25)
    after = outbox.after("A", 25)
    assert at is not None
    assert after is not None
    assert (at.seq, after.seq) == (20, 30)
    assert outbox.at_or_before("A", 10).seq == 10  # type: ignore[union-attr]
    assert outbox.after("A", 30) is None
    assert outbox.latest("A").acked_upto == 27  # type: ignore[union-attr]


def test_writer_commits_checkpoints_and_horizon_in_order(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    run = outbox.begin_run("{}", T0 + 2, [Checkpoint.of(_state("A", 0, T0), None, 0)])
    writer = OutboxWriter(outbox)
    assert writer.horizon == T0 + 2
    jobs = [
        writer.submit_horizon(T0 + 5),
        writer.submit_checkpoints([(_state("A", 4, T0 + 4), 2), (_state("B", 7, T0 + 4), None)]),
        writer.submit_horizon(T0 + 3),  # never back
        writer.submit_checkpoints([(_state("A", 5, T0 + 5), 4)], closed=True),
    ]
    assert jobs == [1, 2, 3, 4]
    assert writer.flush(10.0)
    assert writer.committed == 4
    assert writer.error is None
    assert writer.horizon == T0 + 5
    other = Outbox(tmp_path)
    assert other.run_of(run.run).horizon == T0 + 5
    assert other.latest("A") == Checkpoint.of(_state("A", 5, T0 + 5), 4, run.run, closed=True)
    assert other.latest("B") == Checkpoint.of(_state("B", 7, T0 + 4), None, run.run)
    writer.drain()
    writer.close()
    outbox.close()
    other.close()


def test_writer_failure_is_kept_and_nothing_after_it_is_written(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    outbox.begin_run("{}", T0 + 2, [])
    writer = OutboxWriter(outbox)
    outbox._conn.execute("ALTER TABLE checkpoints RENAME TO checkpoints_gone")  # the writer's rounds now fail
    writer.submit_checkpoints([(_state("A", 1, T0 + 1), 0)])
    writer.submit_horizon(T0 + 9)  # would succeed, but must not be written after a failure
    assert not writer.flush(10.0)
    assert isinstance(writer.error, sqlite3.OperationalError)
    assert writer.committed == 0
    assert writer.horizon == T0 + 2
    writer.close()
    outbox._conn.execute("ALTER TABLE checkpoints_gone RENAME TO checkpoints")
    assert outbox.latest("A") is None
    assert outbox.run_of(1).horizon == T0 + 2
    outbox.close()


def test_a_writer_needs_a_run(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="begin the run"):
        OutboxWriter(Outbox(tmp_path))


def test_prune_keeps_the_retention_of_each_meter_and_its_newest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each meter keeps ``retention_s`` before its own newest checkpoint, however old that is (a meter that stopped long
    ago keeps its newest: it continues from it); meters are pruned a slice at a time, all of them in turn; runs no
    checkpoint refers to go."""
    monkeypatch.setattr(outbox_module, "PRUNE_SLICE", 2)
    outbox = Outbox(tmp_path, retention_s=100)
    old = outbox.begin_run("{}", T0, [Checkpoint.of(_state(m, 0, T0 - 10_000), None, 0) for m in ("A-0001", "Z")])
    ids = ["A-0001", "A-0002", "B-0001", "B-0002", "C-0001"]
    run = outbox.begin_run("{}", T0, [])
    outbox.write_checkpoints(
        [
            Checkpoint.of(_state(m, s, T0 + i * 1000 + 10 * s), None, run.run)
            for i, m in enumerate(ids)
            for s in range(50)
        ]
    )
    assert outbox_module._prune_slice(outbox._conn, 100, "") == "A-0002"  # the first slice: 2 meters
    outbox.prune()  # all of them
    kept = outbox._conn.execute("SELECT meter, MIN(seq), MAX(seq), COUNT(*) FROM checkpoints GROUP BY meter").fetchall()
    assert kept == [(m, 39, 49, 11) for m in ids] + [("Z", 0, 0, 1)]
    assert outbox.run_of(old.run).run == old.run  # Z's newest still refers to it
    outbox.close()
