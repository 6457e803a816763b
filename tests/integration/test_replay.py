"""Replay from history: paced one event per interval by default, at once with pace=none; a client asking for more
than history holds is told (event: reset) and resumes from the oldest window held."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from config.wire import parse_ts
from tests.support.procs import Proc, start_bridge, start_meters
from tests.support.sse import SSEClient

pytestmark = pytest.mark.integration

START = 5 * 3600 + 50 * 60  # the meter starts at 05:50:00 simulated


@pytest.fixture
def replay_fleet(broker: Proc, tmp_path: Path) -> Iterator[Proc]:
    """A bridge that thinks time runs at 1x (so a paced 60 s window takes 60 s) and a meter at 240x with 8 minutes of
    history already received."""
    port = broker.port or 0
    bridge = start_bridge(port, tmp_path, env={"FLEET_SPEED": "1"})
    meters = start_meters(port, ["A"], tmp_path, speed=240, start_at="05:50:00")
    try:
        ready = threading.Event()
        for _ in range(300):  # bounded: 8 simulated minutes take 2 s at 240x
            with urllib.request.urlopen(f"http://127.0.0.1:{bridge.port}/healthz", timeout=5) as response:
                meter = json.loads(response.read())["meters"].get("A", {})
            if str(meter.get("last_reading") or "")[11:19] >= "05:58:00":
                break
            ready.wait(0.05)
        yield bridge
    finally:
        meters.stop()
        assert bridge.stop() == 0, bridge.log()


def test_pace_none_replays_history_at_once(replay_fleet: Proc) -> None:
    client = SSEClient(replay_fleet.port or 0, f"/stream_data?household=A&interval=60&start_index={START}&pace=none")
    try:
        docs = [client.next_data_event().json() for _ in range(5)]  # five windows of history within the read timeout
    finally:
        client.close()
    starts = [parse_ts(str(doc["window_start"])) for doc in docs]
    assert starts == [starts[0] + 60 * i for i in range(5)]
    assert str(docs[0]["window_start"]).endswith("05:50:00Z")


def test_paced_replay_sends_one_window_per_interval(replay_fleet: Proc) -> None:
    client = SSEClient(replay_fleet.port or 0, f"/stream_data?household=A&interval=60&start_index={START}", timeout=3)
    try:
        first = client.next_data_event().json()  # at once
        assert str(first["window_start"]).endswith("05:50:00Z")
        with pytest.raises(TimeoutError):  # the next one is due 60 s later, as the original paced its file
            client.next_data_event()
    finally:
        client.close()


def test_resume_from_before_history_is_told_to_reset(replay_fleet: Proc) -> None:
    long_ago = 1_000_000_000  # 2001: far older than anything held
    client = SSEClient(
        replay_fleet.port or 0,
        "/stream_data?household=A&interval=60&pace=none",
        headers={"Last-Event-ID": str(long_ago)},
    )
    try:
        reset = client.next_event()
        while reset.event != "reset":  # skip the retry block
            reset = client.next_event()
        note = json.loads(reset.data)
        data = client.next_data_event().json()
    finally:
        client.close()
    assert note["resume_from"] == data["window_start"]
    assert str(data["window_start"]).endswith(("05:50:00Z", "05:51:00Z"))  # the first (whole) minute held
