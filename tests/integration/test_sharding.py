"""Two bridge instances share one fleet on Mosquitto, each owning half the meters (``FLEET_SHARD=0/2`` and ``1/2``).

One Mosquitto, one simulator process running ``SIZE`` fleet meters at ``SPEED`` x, and two bridges with the same
``FLEET_HOUSEHOLDS`` (the whole fleet), their own shard, client id (persistent session) and data directory. After a
few simulated minutes the meters stop cleanly; then every meter is held by exactly one instance, which has every seq
from 0 to the meter's last (read from its outbox) exactly once and no gap; the other instance does not know the meter
(its API says "Unrecognized house."); and the readings over both instances add up to what the meters produced: nothing
lost, nothing counted twice.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from config.shard import Shard
from tests.conftest import require_mosquitto
from tests.support.fleetmeters import fleet_ids, outbox_bounds, start_fleet_meters
from tests.support.procs import Proc, get_json, running, start_bridge, start_broker, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.mosquitto]

SIZE = 16  # crc32 splits these ids 8/8 over two shards
SPEED = 30.0
SHARDS = 2
RUN_S = 240  # simulated seconds every meter publishes, at least, before it is stopped


def _meters(bridge: Proc) -> dict[str, dict[str, int]]:
    meters = get_json(bridge.port or 0, "/api/meters")["meters"]
    assert isinstance(meters, dict)
    return meters


def _store_seqs(bridge_dir: Path) -> dict[str, list[int]]:
    with sqlite3.connect(bridge_dir / "data" / "bridge.sqlite3") as conn:
        rows = conn.execute("SELECT meter, seq FROM readings ORDER BY meter, seq").fetchall()
    seqs: dict[str, list[int]] = {}
    for meter, seq in rows:
        seqs.setdefault(str(meter), []).append(int(seq))
    return seqs


def _setup_status(bridge: Proc, household: str) -> tuple[int, dict[str, object]]:
    body = json.dumps({"household": household, "interval": 10}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{bridge.port}/stream_setup", body, {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_two_bridges_each_own_half_the_fleet_nothing_lost_or_doubled(tmp_path: Path) -> None:
    require_mosquitto()
    ids = fleet_ids(SIZE)
    shards = [Shard(k, SHARDS) for k in range(SHARDS)]
    owned = [set(shard.owned(ids)) for shard in shards]
    assert [len(mine) for mine in owned] == [SIZE // SHARDS] * SHARDS  # half each
    assert set().union(*owned) == set(ids)
    with contextlib.ExitStack() as stack:  # every process started is stopped, whatever fails
        broker = start_broker("mosquitto", tmp_path / "broker", meters=ids)
        stack.enter_context(running(broker))
        bridges: list[Proc] = []
        for shard in shards:
            env = {
                "FLEET_SPEED": str(SPEED),
                "FLEET_HOUSEHOLDS": ",".join(ids),  # the same on every instance: the shard picks its part
                "FLEET_SHARD": str(shard),
                "FLEET_BRIDGE_ID": f"bridge-{shard.index}",  # a persistent session each
            }
            bridges.append(start_bridge(broker.port or 0, tmp_path / f"bridge-{shard.index}", env=env))  # own data
            stack.enter_context(running(bridges[-1]))
        started = time.monotonic()
        meters = start_fleet_meters(broker.port or 0, SIZE, tmp_path / "meters", speed=SPEED)
        stack.enter_context(running(meters))

        def ran() -> bool:
            return all(all(int(row["received"]) >= RUN_S for row in _meters(bridge).values()) for bridge in bridges)

        wait_until(ran, 60 + RUN_S / SPEED, f"every meter's {RUN_S} readings at their bridge")
        assert meters.stop(signal.SIGTERM) == 0, meters.log()[-3000:]
        wall_s = round(time.monotonic() - started, 1)
        last = {meter: seq for meter, (seq, _, _) in outbox_bounds(tmp_path / "meters").items()}
        assert set(last) == set(ids)

        def complete() -> bool:
            for bridge, mine in zip(bridges, owned, strict=True):
                rows = _meters(bridge)
                if any(rows[m]["last_seq"] != last[m] or rows[m]["gaps_open"] != 0 for m in mine):
                    return False
            return True

        wait_until(complete, 30, "every seq up to each meter's last held by its bridge, no gap open")
        for bridge, mine in zip(bridges, owned, strict=True):
            summary = _meters(bridge)
            assert set(summary) == mine  # /api/meters lists only the meters this instance owns
            healthz = get_json(bridge.port or 0, "/healthz")["meters"]
            assert isinstance(healthz, dict)
            assert set(healthz) == mine  # and it heard no other
            for meter in mine:
                row = summary[meter]
                assert row["received"] == last[meter] + 1, (meter, row)
                assert (row["gaps_open"], row["seq_restarts"]) == (0, 0), (meter, row)
            other = sorted(set(ids) - mine)[0]
            assert _setup_status(bridge, other) == (400, {"error": "Unrecognized house."})
            assert _setup_status(bridge, sorted(mine)[0])[0] == 200
        for bridge in bridges:
            assert bridge.stop(signal.SIGTERM) == 0  # flushes the store
    stored = [_store_seqs(tmp_path / f"bridge-{shard.index}") for shard in shards]
    for seqs, mine in zip(stored, owned, strict=True):
        assert set(seqs) == mine
        for meter in mine:
            assert seqs[meter] == list(range(last[meter] + 1)), meter  # each seq exactly once
    total = sum(seq + 1 for seq in last.values())
    per_instance = [sum(len(s) for s in seqs.values()) for seqs in stored]
    assert sum(per_instance) == total  # nothing lost, nothing counted twice
    figures = {"meters": SIZE, "speed": SPEED, "readings": total, "per_instance": per_instance, "wall_s": wall_s}
    print(f"\nSHARDING FIGURES {json.dumps(figures)}")
