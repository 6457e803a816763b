"""A meter killed (SIGKILL) and restarted continues its sequence and its energy registers: the bridge sees no new
sequence, and registers never go down (Home Assistant's total_increasing)."""

from __future__ import annotations

import json
import signal
import urllib.request
from pathlib import Path

import pytest

from config.topics import batch_topic, reading_topic
from config.wire import Reading
from tests.support.mqtt import Collector, collecting, readings_in
from tests.support.procs import Proc, running, start_bridge, start_meters

pytestmark = pytest.mark.integration


def _take(sub: Collector, count: int) -> list[Reading]:
    """At least ``count`` readings, single or in batches, in arrival order."""
    readings: list[Reading] = []
    for _ in range(count):  # bounded: each message brings one reading or more
        readings += readings_in(sub.wait_for(lambda m: True, 15))
        if len(readings) >= count:
            break
    return readings


def test_killed_meter_continues_seq_and_registers(broker: Proc, tmp_path: Path) -> None:
    port = broker.port or 0
    bridge = start_bridge(port, tmp_path)
    with running(bridge), collecting(port, [reading_topic("A"), batch_topic("A")]) as sub:
        first = start_meters(port, ["A"], tmp_path, speed=30, start_at="06:30:00", profile="realistic")
        before = _take(sub, 60)
        assert first.stop(signal.SIGKILL) == -signal.SIGKILL
        second = start_meters(
            port, ["A"], tmp_path, speed=30, start_at="06:30:00", profile="realistic", name="meters-A-again"
        )
        with running(second):
            after = _take(sub, 60)
        # A restarted meter first sends again what the broker never acknowledged (at least once): the same readings.
        by_seq: dict[int, Reading] = {}
        for reading in before + after:
            assert by_seq.setdefault(reading.seq, reading) == reading, "a seq used for two different readings"
        fresh = [r for r in after if r.seq > before[-1].seq]
        assert fresh, "no new reading after the restart"
        unique = [by_seq[seq] for seq in sorted(by_seq)]
        assert [r.ts for r in unique] == sorted({r.ts for r in unique})  # never back in time (--start said 06:30 again)
        registers = [r.overall_kwh for r in unique]
        assert registers == sorted(registers)
        with urllib.request.urlopen(f"http://127.0.0.1:{bridge.port}/api/meters", timeout=5) as response:
            a = json.loads(response.read())["meters"]["A"]
        assert a["seq_restarts"] == 0
        # Only readings written to the outbox but not yet sent when the process died can be missing.
        assert a["gaps_open"] <= fresh[0].seq - before[-1].seq - 1
