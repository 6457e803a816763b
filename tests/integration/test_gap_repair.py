"""Readings the bridge missed while it was down are repaired: the bridge sees the gap in seq, asks the meter to replay
(meters/<id>/cmd/replay), the meter answers from its outbox; in the end every seq is held exactly once.

The bridge comes back under another client id, so the broker holds no session for it (its persistent session, the first
line of defence, would otherwise deliver what it missed and leave no gap to repair: see test_faults.py)."""

from __future__ import annotations

import json
import signal
import threading
import time
import urllib.request
from pathlib import Path

import paho.mqtt.publish as publish
import pytest

from bridge.ingest.repair import CHUNK_SEQS
from config.topics import replay_topic
from config.wire import Reading, decode_replay, encode_reading
from tests.support.mqtt import collecting
from tests.support.procs import Proc, login, running, start_bridge, start_meters, wait_until

pytestmark = pytest.mark.integration


def _meter(port: int, meter: str) -> dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/meters", timeout=5) as response:
        found = json.loads(response.read())["meters"][meter]
    assert isinstance(found, dict)
    return found


def _wait(check: object, seconds: float) -> None:
    tick = threading.Event()
    for _ in range(int(seconds / 0.1)):  # bounded
        if check():  # type: ignore[operator]
            return
        tick.wait(0.1)


def test_bridge_down_then_gap_repaired_from_the_meter_outbox(broker: Proc, tmp_path: Path) -> None:
    port = broker.port or 0
    bridge_dir, meter_dir = tmp_path / "bridge", tmp_path / "meter"
    bridge = start_bridge(port, bridge_dir)
    meters = start_meters(port, ["A"], meter_dir, speed=20, start_at="07:00:00")
    with running(meters):
        _wait(lambda: int(_meter(bridge.port or 0, "A")["received"]) >= 40, 15)  # type: ignore[arg-type]
        assert bridge.stop(signal.SIGKILL) == -signal.SIGKILL  # readings published now reach nobody
        down = threading.Event()
        down.wait(2.0)  # the outage itself: 2 s of wall time, about 40 readings at 20x
        again = start_bridge(port, bridge_dir, env={"FLEET_BRIDGE_ID": "bridge-lost-session"})
        with running(again):

            def repaired() -> bool:
                a = _meter(again.port or 0, "A")
                return int(a["gaps_repaired"]) > 0 and a["gaps_open"] == 0  # type: ignore[arg-type]

            _wait(repaired, 20)
            a = _meter(again.port or 0, "A")
    assert int(a["gaps_repaired"]) >= 20, a  # type: ignore[arg-type]
    assert a["gaps_open"] == 0, a
    assert a["seq_restarts"] == 0, a
    assert a["received"] == int(a["last_seq"]) + 1, a  # type: ignore[arg-type]  # seq 0..last, each exactly once


GAP = 600_000


def test_a_huge_gap_gets_one_chunk_and_the_bridge_stays_responsive(broker: Proc, tmp_path: Path) -> None:
    """A gap of 600,000 seqs (legitimate: about a week of one reading a second, the longest a meter's outbox keeps, in
    a fast simulation where that week passes in seconds) is asked one chunk at a time; before, every chunk of it went
    out in one pass (for 2**62 seqs the pass never ended)."""
    port = broker.port or 0
    bridge = start_bridge(port, tmp_path / "bridge", env={"FLEET_SPEED": "100000"})
    with running(bridge), collecting(port, [replay_topic("A")]) as requests:
        start_ts = int(time.time()) - 2_000_000
        for seq, ts in ((0, start_ts), (1, start_ts + 1), (GAP + 1, start_ts + GAP + 1)):
            reading = Reading("A", seq, ts, 0.0, 0.0, 500.0, 0.0, 0.0, 0.0)
            publish.single(
                "meters/A/reading",
                encode_reading(reading),
                qos=1,
                hostname="127.0.0.1",
                port=port,
                client_id="meter-A",  # the only client id A's login may use
                auth=login("A"),
            )
        first = requests.wait_for(lambda m: True, timeout=30)
        assert decode_replay(first.payload) == (2, 1 + CHUNK_SEQS)
        asked = _meter(bridge.port or 0, "A")["replay_requested"]
        assert asked == CHUNK_SEQS, asked  # one request in that pass (the retry comes RETRY_S later)
        wait_until(lambda: _healthz(bridge.port or 0) == "ok", 30, "the bridge answers /healthz")


def _healthz(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
        status = json.loads(response.read())["status"]
    assert isinstance(status, str)
    return status
