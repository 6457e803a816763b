"""simulator.outbox: what meters published survives them; a restarted meter continues its seq and registers."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

from simulator.fleet import build_meters, fleet_specs
from simulator.outbox import Outbox

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
