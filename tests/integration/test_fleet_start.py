"""`python -m simulator run --fleet N` alone: N meters over the A, B, C templates come online at a real broker, and
the start-up is a few progress lines at INFO, not a line per meter."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from config.wire import ONLINE
from tests.support.mqtt import collecting
from tests.support.procs import running, start_broker, start_meters, wait_until

pytestmark = pytest.mark.integration

FLEET = 50
CONNECT_RATE = 5  # connections a second: a start-up of about 10 s, long enough for progress lines every 5 s
METERS = [f"{template}-{member:04d}" for member in range(1, 18) for template in "ABC"][:FLEET]
PROGRESS = re.compile(r"simulator INFO simulator\.publisher: connected ([\d,]+)/50, ([\d.,]+)/s$", re.MULTILINE)


def test_fleet_alone_uses_a_b_c_and_logs_progress_not_each_meter(tmp_path: Path) -> None:
    broker = start_broker("amqtt", tmp_path / "broker", meters=METERS)
    port = broker.port or 0
    with running(broker), collecting(port, ["meters/+/status"]) as statuses:
        meters = start_meters(
            port, (), tmp_path / "meters", name="fleet", extra=["--fleet", str(FLEET), "--connect-rate", "5"]
        )
        with running(meters):
            online: set[str] = set()
            while online != set(METERS):  # bounded: wait_for raises after 60 s without a status
                message = statuses.wait_for(lambda m: m.payload == ONLINE.encode(), 60)
                online.add(message.topic.split("/")[1])
            wait_until(lambda: f"all {FLEET} meters connected after" in meters.log(), 30, "the all-connected line")
            log = meters.log()
    assert "INFO" in log
    assert " online at " not in log  # each meter's line is at DEBUG
    progress = [int(done.replace(",", "")) for done, _ in PROGRESS.findall(log)]
    assert progress, log
    assert progress[-1] == FLEET  # the episode that printed lines says when it is over
    assert progress == sorted(progress)
    assert len(progress) <= 6, log  # about one every 5 s of a 10 s start-up, never one per meter
