"""A client that goes away is cleaned up within one heartbeat: the bridge's open-stream gauge drops back."""

from __future__ import annotations

import threading
import urllib.request
from pathlib import Path

import pytest

from tests.support.procs import Proc, running, start_bridge, start_meters
from tests.support.sse import SSEClient

pytestmark = pytest.mark.integration


def _open_streams(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    line = next(line for line in text.splitlines() if line.startswith("fleet_bridge_sse_clients "))
    return float(line.split()[1])


def test_closed_streams_are_cleaned_up_within_a_heartbeat(broker: Proc, tmp_path: Path) -> None:
    port = broker.port or 0
    bridge = start_bridge(port, tmp_path, env={"FLEET_HEARTBEAT_S": "1"})
    meters = start_meters(port, ["A"], tmp_path, speed=10)
    with running(meters, bridge):
        clients = [SSEClient(bridge.port or 0, "/stream_data?household=A&interval=3600") for _ in range(5)]
        for client in clients:
            client.next_event()  # retry: the stream is open (no window of an hour is due for a long while)
        assert _open_streams(bridge.port or 0) == 5
        for client in clients:
            client.close()
        tick = threading.Event()
        for _ in range(50):  # bounded: the next heartbeat (1 s) fails to write and closes each stream
            if _open_streams(bridge.port or 0) == 0:
                break
            tick.wait(0.1)
        assert _open_streams(bridge.port or 0) == 0
