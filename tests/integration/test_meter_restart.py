"""A meter killed (SIGKILL) and restarted continues its sequence and its energy registers: the bridge sees no new
sequence, and registers never go down (Home Assistant's total_increasing)."""

from __future__ import annotations

import json
import signal
import urllib.request
from pathlib import Path

import pytest

from config.wire import Reading, decode_reading
from tests.support.mqtt import Collector, collecting
from tests.support.procs import Proc, running, start_bridge, start_meters

pytestmark = pytest.mark.integration


def _take(sub: Collector, count: int) -> list[Reading]:
    return [decode_reading(m.topic, m.payload) for m in (sub.wait_for(lambda m: True, 15) for _ in range(count))]


def test_killed_meter_continues_seq_and_registers(broker: Proc, tmp_path: Path) -> None:
    port = broker.port or 0
    bridge = start_bridge(port, tmp_path)
    with running(bridge), collecting(port, ["meters/A/reading"]) as sub:
        first = start_meters(port, ["A"], tmp_path, speed=30, start_at="06:30:00", profile="realistic")
        before = _take(sub, 60)
        assert first.stop(signal.SIGKILL) == -signal.SIGKILL
        second = start_meters(
            port, ["A"], tmp_path, speed=30, start_at="06:30:00", profile="realistic", name="meters-A-again"
        )
        with running(second):
            after = _take(sub, 60)
        seqs = [r.seq for r in before + after]
        assert seqs == sorted(set(seqs))  # strictly increasing: no seq used twice
        assert after[0].seq > before[-1].seq
        assert after[0].ts > before[-1].ts  # and never back in time, although --start said 06:30 again
        registers = [r.overall_kwh for r in before + after]
        assert registers == sorted(registers)
        with urllib.request.urlopen(f"http://127.0.0.1:{bridge.port}/api/meters", timeout=5) as response:
            a = json.loads(response.read())["meters"]["A"]
        assert a["seq_restarts"] == 0
        # Only readings written to the outbox but not yet sent when the process died can be missing.
        assert a["gaps_open"] <= after[0].seq - before[-1].seq - 1
