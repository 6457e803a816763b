"""History survives a bridge restart: readings are in SQLite, the rings are reloaded, replay reaches back past it."""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest

from config.wire import parse_ts
from tests.support.procs import Proc, start_bridge, start_meters
from tests.support.sse import SSEClient

pytestmark = pytest.mark.integration


def _health(port: int) -> dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
        doc = json.loads(response.read())
    assert isinstance(doc, dict)
    return doc


def _received(port: int, meter: str) -> int:
    meters = _health(port)["meters"]
    assert isinstance(meters, dict)
    return int(meters.get(meter, {}).get("received", 0))


def test_history_survives_a_bridge_restart(broker: Proc, tmp_path: Path) -> None:
    port = broker.port or 0
    bridge = start_bridge(port, tmp_path)
    meters = start_meters(port, ["A"], tmp_path, speed=60, start_at="05:58:00")
    try:
        first = SSEClient(bridge.port or 0, "/stream_data?household=A&interval=30")
        try:
            seen = [first.next_data_event().json() for _ in range(4)]  # two simulated minutes
        finally:
            first.close()
    finally:
        assert bridge.stop() == 0, bridge.log()
    assert (tmp_path / "data" / "bridge.sqlite3").exists()
    again = start_bridge(port, tmp_path)
    try:
        assert _received(again.port or 0, "A") >= 120  # reloaded before any new reading could add up to that
        start = parse_ts(str(seen[0]["window_start"]))
        start_index = int(datetime.fromtimestamp(start, UTC).strftime("%H")) * 3600 + start % 3600
        replay = SSEClient(again.port or 0, f"/stream_data?household=A&interval=30&start_index={start_index}&pace=none")
        try:
            replayed = [replay.next_data_event().json() for _ in range(4)]
        finally:
            replay.close()
        # The same windows, from disk, after the restart (colours may differ: the baseline has grown since).
        values = ("window_start", "window_end", "AC", "Geyser", "Overall", "samples")
        assert [[doc[k] for k in values] for doc in replayed] == [[doc[k] for k in values] for doc in seen]
    finally:
        meters.stop()
        assert again.stop() == 0, again.log()
