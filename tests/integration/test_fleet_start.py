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
PROGRESS = re.compile(r"simulator INFO simulator\.live\.publisher: connected ([\d,]+)/50, ([\d.,]+)/s$", re.MULTILINE)


def _progress(log: str) -> list[int]:
    return [int(done.replace(",", "")) for done, _ in PROGRESS.findall(log)]


def test_fleet_alone_uses_a_b_c_and_logs_progress_not_each_meter(tmp_path: Path) -> None:
    broker = start_broker("amqtt", tmp_path / "broker", meters=METERS)
    port = broker.port or 0
    meters = start_meters(
        port, (), tmp_path / "meters", name="fleet", extra=["--fleet", str(FLEET), "--connect-rate", str(CONNECT_RATE)]
    )
    with running(meters):
        with running(broker), collecting(port, ["meters/+/status"]) as statuses:
            online: set[str] = set()
            while online != set(METERS):  # bounded: wait_for raises after 60 s without a status
                message = statuses.wait_for(lambda m: m.payload == ONLINE.encode(), 60)
                online.add(message.topic.split("/")[1])
            wait_until(lambda: f"all {FLEET} meters connected after" in meters.log(), 30, "the all-connected line")
        start_up = meters.log()
        # A reconnect storm: the broker goes and comes back on the same port; every meter reconnects, paced.
        mark = len(start_up)
        again = start_broker("amqtt", tmp_path / "broker-again", meters=METERS, port=port)
        with running(again):
            back = f"connected {FLEET}/{FLEET}, "
            wait_until(lambda: back in meters.log()[mark:], 90, "the fleet back, said in a progress line")
            storm = meters.log()[mark:]
    assert "INFO" in start_up
    assert " online at " not in start_up  # each meter's line is at DEBUG
    progress = _progress(start_up)
    assert progress, start_up
    assert progress[-1] == FLEET  # the episode that printed lines says when it is over
    assert progress == sorted(progress)
    assert len(progress) <= 6, start_up  # about one every 5 s of a 10 s start-up, never one per meter
    assert " online again at " not in storm
    assert " online at " not in storm
    reconnected = _progress(storm)
    assert reconnected[-1] == FLEET, storm
    assert len(reconnected) <= 12, storm  # a line every 5 s of a reconnect at 5 a second (plus back-off), at most
