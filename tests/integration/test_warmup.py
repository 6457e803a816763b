"""A meter's first start warms up: it publishes the past first, so statistics and replay work from the first minute;
a restart resumes its sequence and never publishes a second warm-up."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from config.wire import parse_ts
from tests.support.mqtt import READING_TOPICS, collecting, readings_in
from tests.support.procs import Proc, running, start_bridge, start_meters, wait_until

pytestmark = pytest.mark.integration

HOUSEHOLDS = ("A", "B", "C")
WARMUP_S = 2 * 3600  # FLEET_WARMUP=2h: the default day, shortened (the hold before it is the same 5 s)
WAIT_S = 90.0  # bounded waits: the warm-up's 21,600 readings and the 5 s hold take seconds


def _get(port: int, path: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        with err:
            return err.code, json.loads(err.read())


def _meters(bridge: Proc) -> dict[str, dict[str, object]]:
    _, body = _get(bridge.port or 0, "/api/meters")
    meters = body["meters"]
    assert isinstance(meters, dict)
    return meters


def _all_in(bridge: Proc, minimum: int) -> bool:
    """Every household's seqs from 0 are held, at least ``minimum`` of them, none missing."""
    meters = _meters(bridge)
    for household in HOUSEHOLDS:
        figures = meters.get(household)
        if figures is None or figures["last_seq"] is None or figures["gaps_open"] != 0:
            return False
        received, last_seq = int(str(figures["received"])), int(str(figures["last_seq"]))
        if received < minimum or received != last_seq + 1:
            return False
    return True


def test_warmup_backfills_before_going_live(broker: Proc, tmp_path: Path) -> None:
    port = broker.port or 0
    bridge = start_bridge(port, tmp_path / "bridge")
    meters = start_meters(port, ["A"], tmp_path / "meter", speed=1, extra=["--warmup", "10m"])
    with running(meters, bridge):
        tick = threading.Event()
        for _ in range(200):  # bounded: the 5 s hold, then 600 readings at broker speed
            _, body = _get(bridge.port or 0, "/api/meters")
            if int(body["meters"]["A"]["received"]) >= 600:  # type: ignore[index]
                break
            tick.wait(0.1)
        status, stats = _get(bridge.port or 0, "/stream_qstats?household=A&interval=5")
        _, body = _get(bridge.port or 0, "/api/meters")
    a = body["meters"]["A"]  # type: ignore[index]
    assert int(a["received"]) >= 600, a
    assert a["gaps_open"] == 0
    assert status == 200, stats
    assert stats["warming_up"] is False
    assert int(stats["window_count"]) >= 100  # type: ignore[arg-type]


def test_first_start_warms_up_once_and_a_restart_continues(broker: Proc, tmp_path: Path) -> None:
    """FLEET_WARMUP=2h for A, B and C (one process, as `make up` runs them): the bridge holds the two hours of each
    meter and its statistics are past warming up at every interval; stopped cleanly and started again on the same
    outbox, the meters continue their sequences and publish nothing from the past."""
    port = broker.port or 0
    bridge = start_bridge(port, tmp_path / "bridge")
    meter_dir = tmp_path / "meter"
    env = {"FLEET_WARMUP": "2h"}
    started = time.time()  # speed 1, UTC, no --start: simulated time is the wall clock
    first = start_meters(port, list(HOUSEHOLDS), meter_dir, speed=1, env=env, profile="realistic", name="first")
    with running(bridge):
        with running(first):
            wait_until(lambda: _all_in(bridge, WARMUP_S), WAIT_S, f"{WARMUP_S} s of warm-up of A, B, C held")
            for household in HOUSEHOLDS:
                for interval in (1, 60, 300):
                    path = f"/stream_qstats?household={household}&interval={interval}"
                    # A baseline cached while the warm-up was arriving (the republisher asks for 60 s windows' colours
                    # from the first one) is recomputed by the background pass within a second or so.
                    wait_until(lambda p=path: _get(bridge.port or 0, p)[1].get("warming_up") is False, 15, path)  # type: ignore[misc]
                    status, stats = _get(bridge.port or 0, path)
                    assert status == 200, stats
                    assert stats["warming_up"] is False, (household, interval, json.dumps(stats))
                    # The statistics reach back to the warm-up's first window: two hours before the start.
                    assert parse_ts(str(stats["from"])) <= started - WARMUP_S + interval, (household, stats)
        assert first.stop() == 0, first.log()[-3000:]
        assert "warm-up: A,B,C publish the past 7200 s first" in first.log()
        before = _meters(bridge)
        last = {household: int(str(before[household]["last_seq"])) for household in HOUSEHOLDS}

        restarted = time.time()
        with collecting(port, READING_TOPICS) as sub:
            again = start_meters(port, list(HOUSEHOLDS), meter_dir, speed=1, env=env, profile="realistic", name="again")
            with running(again):
                newest = dict(last)
                deadline = time.monotonic() + WAIT_S
                while min(newest[h] - last[h] for h in HOUSEHOLDS) < 5:  # five live seconds of each: bounded
                    msg = sub.wait_for(lambda m: True, timeout=max(0.1, deadline - time.monotonic()))
                    for reading in readings_in(msg):
                        # No second warm-up: nothing from before the restart but the last seconds the broker may
                        # not have acknowledged at the stop, and those with their own seqs.
                        assert reading.ts >= restarted - 30, reading
                        assert reading.seq > last[reading.meter] - 30, reading
                        newest[reading.meter] = max(newest[reading.meter], reading.seq)
                # The sequence continued where it stopped: every seq from 0 held, none missing, new ones after.
                wait_until(
                    lambda: (
                        _all_in(bridge, 0)
                        and all(int(str(_meters(bridge)[h]["last_seq"])) > last[h] for h in HOUSEHOLDS)
                    ),
                    WAIT_S,
                    "A, B, C continued with nothing missing",
                )
                after = _meters(bridge)
        assert "warm-up" not in again.log(), again.log()[-3000:]
    for household in HOUSEHOLDS:
        assert after[household]["seq_restarts"] == 0, after[household]  # the same timeline, not a new one
