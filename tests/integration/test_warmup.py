"""A meter's first start with --warmup publishes the past first: statistics work from the first minute."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support.procs import Proc, running, start_bridge, start_meters

pytestmark = pytest.mark.integration


def _get(port: int, path: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        with err:
            return err.code, json.loads(err.read())


def test_warmup_backfills_before_going_live(broker: Proc, tmp_path: Path) -> None:
    port = broker.port or 0
    bridge = start_bridge(port, tmp_path / "bridge")
    meters = start_meters(port, ["A"], tmp_path / "meter", speed=1, extra=["--warmup", "10m"])
    with running(meters, bridge):
        tick = threading.Event()
        for _ in range(200):  # bounded: 600 readings at broker speed take a few seconds
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
