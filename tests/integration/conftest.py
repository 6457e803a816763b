"""Integration fixtures: a running fleet (broker + meters A, B, C + bridge) per broker kind, shared by a module."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import require_mosquitto
from tests.support.procs import Proc, start_bridge, start_broker, start_meters

SPEED = 60.0
START_AT = "05:59:00"  # a minute before household A's geyser switches on at 06:00
HEARTBEAT_S = 2  # the heartbeat test waits for one (the default 15 s cost CI 13 s per broker)


@dataclass
class Fleet:
    """A running fleet: its processes and how to reach them."""

    broker: Proc
    meters: Proc
    bridge: Proc

    @property
    def mqtt_port(self) -> int:
        """The broker's port."""
        assert self.broker.port is not None
        return self.broker.port

    @property
    def http_port(self) -> int:
        """The bridge's HTTP port."""
        assert self.bridge.port is not None
        return self.bridge.port

    def url(self, path: str) -> str:
        """Absolute URL of a bridge path."""
        return f"http://127.0.0.1:{self.http_port}{path}"

    def post_json(
        self, path: str, body: object, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, object], dict[str, str]]:
        """POST JSON; returns status, parsed JSON body and headers (errors included)."""
        data = json.dumps(body).encode()
        request = urllib.request.Request(
            self.url(path), data=data, method="POST", headers={"Content-Type": "application/json", **(headers or {})}
        )
        return _send(request)

    def get_json(
        self, path: str, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, object], dict[str, str]]:
        """GET; returns status, parsed JSON body and headers (errors included)."""
        return _send(urllib.request.Request(self.url(path), headers=headers or {}))


def _send(request: urllib.request.Request) -> tuple[int, dict[str, object], dict[str, str]]:
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as err:
        with err:  # an HTTPError holds the response open
            return err.code, json.loads(err.read()), dict(err.headers)


@pytest.fixture(scope="module", params=["amqtt", pytest.param("mosquitto", marks=pytest.mark.mosquitto)])
def fleet(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """Broker, bridge and one simulator process with meters A, B and C at 60x from 05:59:00, on each broker."""
    kind = str(request.param)
    if kind == "mosquitto":
        require_mosquitto()
    logs: Path = tmp_path_factory.mktemp(f"fleet-{kind}")
    broker = start_broker(kind, logs)
    bridge = meters = None
    try:
        env = {"FLEET_HOUSEHOLDS": "A,B,C,D", "FLEET_SPEED": str(SPEED), "FLEET_HEARTBEAT_S": str(HEARTBEAT_S)}
        bridge = start_bridge(broker.port or 0, logs, env=env)
        meters = start_meters(broker.port or 0, ["A", "B", "C"], logs, speed=SPEED, start_at=START_AT)
        yield Fleet(broker, meters, bridge)
    finally:
        stopped = [(proc, proc.stop()) for proc in (meters, bridge, broker) if proc is not None]
        for proc, code in stopped:
            assert code == 0, f"{proc.name} exited with {code}:\n{proc.log()[-3000:]}"
