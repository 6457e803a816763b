"""simulator.outbox: what meters published survives them; a restarted meter continues its seq and registers."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from config.wire import encode_reading
from simulator import outbox as outbox_module
from simulator.fleet import build_meters, fleet_specs
from simulator.outbox import Outbox, OutboxWriter

T0 = 1_704_067_200
UTC_ZONE = ZoneInfo("UTC")


def test_a_restarted_meter_continues_where_the_outbox_left_it(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    first = build_meters(fleet_specs(["A"]), 1, UTC_ZONE, T0, "classic")[0]
    published = first.due(T0 + 100, limit=1000)
    payloads = outbox.record(published)
    assert len(payloads) == 100
    last = outbox.last("A")
    assert last is not None
    assert (last.seq, last.ts) == (99, T0 + 99)
    assert last.overall_kwh == published[-1].overall_kwh
    outbox.close()

    # Killed; restarted with a clock that says "earlier" (the same --start): it must not go back in time.
    again = Outbox(tmp_path)
    resume = {"A": again.last("A")}
    restarted = build_meters(fleet_specs(["A"]), 1, UTC_ZONE, T0 + 10, "classic", resume=resume)[0]  # type: ignore[arg-type]
    more = restarted.due(T0 + 150, limit=1000)
    assert [r.seq for r in more] == list(range(100, 150))
    assert [r.ts for r in more] == list(range(T0 + 100, T0 + 150))
    assert more[0].overall_kwh > published[-1].overall_kwh  # registers only grow across the restart
    assert again.last("B") is None


def test_prune_keeps_the_retention_of_each_meter(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path, retention_s=60)
    meters = build_meters(fleet_specs(["A", "B"]), 1, UTC_ZONE, T0, "classic")
    outbox.record([r for m in meters for r in m.due(T0 + 300, limit=1000)])
    outbox.prune()
    rows = outbox._conn.execute("SELECT meter, MIN(ts), COUNT(*) FROM outbox GROUP BY meter ORDER BY meter").fetchall()
    assert rows == [("A", T0 + 239, 61), ("B", T0 + 239, 61)]


def test_writer_commits_in_order_with_exact_payloads_and_registers(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    writer = OutboxWriter(outbox)
    meters = build_meters(fleet_specs(["A", "B"]), 1, UTC_ZONE, T0, "classic")
    readings = [r for m in meters for r in m.due(T0 + 120, limit=1000)]
    payloads = [encode_reading(r) for r in readings]
    jobs = [writer.submit(readings[:100], payloads[:100], {}), writer.submit(readings[100:], payloads[100:], {"A": 41})]
    assert jobs == [1, 2]
    assert writer.flush(10.0)
    assert writer.committed == 2
    assert writer.error is None
    assert outbox.payloads("A", 0, 119) == payloads[:120]  # the very bytes that were handed in
    assert outbox.payloads("B", 10, 12) == payloads[130:133]
    last = outbox.last("B")
    assert last is not None
    assert (last.seq, last.ts) == (119, T0 + 119)
    # Registers come back as the same doubles (the restart continues from them), not as the payload's 4 decimals.
    assert (last.ac_kwh, last.geyser_kwh, last.overall_kwh) == (
        readings[-1].ac_kwh,
        readings[-1].geyser_kwh,
        readings[-1].overall_kwh,
    )
    assert outbox.acked_upto("A") == 41
    writer.drain()
    writer.close()
    outbox.close()


def test_writer_failure_is_kept_and_nothing_after_it_is_written(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    writer = OutboxWriter(outbox)
    meter = build_meters(fleet_specs(["A"]), 1, UTC_ZONE, T0, "classic")[0]
    readings = meter.due(T0 + 3, limit=10)
    payloads = [encode_reading(r) for r in readings]
    outbox._conn.execute("ALTER TABLE acked RENAME TO acked_gone")  # the writer's acknowledgement marks now fail
    writer.submit(readings[:1], payloads[:1], {"A": 0})
    writer.submit(readings[1:], payloads[1:], {})  # would succeed, but must not be written after a failure
    assert not writer.flush(10.0)
    assert isinstance(writer.error, sqlite3.OperationalError)
    assert writer.committed == 0
    assert outbox.last("A") is None  # the failed transaction left nothing, and the next one was not tried
    writer.close()
    outbox.close()


def test_prune_goes_through_every_meter_a_slice_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each meter keeps ``retention_s`` before its own newest reading, however old that is (a meter that stopped long
    ago keeps its last readings: it continues from them); meters are pruned a slice at a time, all of them in turn."""
    monkeypatch.setattr(outbox_module, "PRUNE_SLICE", 2)
    outbox = Outbox(tmp_path, retention_s=10)
    ids = ["A-0001", "A-0002", "B-0001", "B-0002", "C-0001"]
    rows = [(m, s, T0 + i * 1000 + s, 0.0, 0.0, 0.0, b"{}") for i, m in enumerate(ids) for s in range(100)]
    with outbox._conn:
        outbox._conn.executemany("INSERT INTO outbox VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    assert outbox_module._prune_slice(outbox._conn, 10, "") == "A-0002"  # the first slice: 2 meters
    outbox.prune()  # all of them
    kept = outbox._conn.execute("SELECT meter, MIN(seq), MAX(seq), COUNT(*) FROM outbox GROUP BY meter").fetchall()
    assert kept == [(m, 89, 99, 11) for m in ids]
