"""Home Assistant and other MQTT consumers, end to end on both brokers: the bridge's retained discovery configs, their
republication when Home Assistant comes online, the retained window aggregates on meters/<id>/agg/60s, and the
bridge's own availability (retained ``online``; ``offline`` on a clean stop, and as its Last Will when killed)."""

from __future__ import annotations

import json
import queue
import signal
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.publish as publish
import pytest

from config.households import CLASSIC
from config.topics import BRIDGE_STATUS_SUBSCRIPTION, WHOLE_FLEET, bridge_status_topic
from config.wire import decode_reading, parse_ts
from tests.support.mqtt import Collector, Msg, collecting
from tests.support.procs import Proc, login, signal_tree, start_bridge, start_meters

pytestmark = pytest.mark.integration

SPEED = 60.0
START_AT = "05:58:30"  # A's geyser switches on at 06:00, a simulated minute and a half (1.5 s) later
HOUSEHOLDS = ("A", "B", "C")
CONFIGURED = (*HOUSEHOLDS, "D")  # D is configured but no meter runs: discovered, yet nothing on its meter topics
CHANNEL_TOPICS = ("reading", "readings", "status", "agg/60s")  # readings: batches of a meter that had to catch up
BRIDGE_STATUS = bridge_status_topic(WHOLE_FLEET)  # bridges/fleet/status: an unsharded bridge's availability


def _drain(collector: Collector, into: list[Msg]) -> None:
    while True:
        try:
            into.append(collector.messages.get_nowait())
        except queue.Empty:
            return


def _collect(collector: Collector, done: Callable[[list[Msg]], bool], timeout: float) -> list[Msg]:
    """Messages from ``collector`` until ``done(messages)``; TimeoutError after ``timeout`` s."""
    got: list[Msg] = []
    deadline = time.monotonic() + timeout
    while not done(got):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"only {len(got)} messages: {[m.topic for m in got][-10:]}")
        try:
            got.append(collector.messages.get(timeout=remaining))
        except queue.Empty:
            continue
    return got


def _configs(messages: list[Msg]) -> dict[str, dict[str, Any]]:
    return {m.topic.split("/")[2]: json.loads(m.payload) for m in messages if m.topic.endswith("/config")}


def _has_configs(messages: list[Msg]) -> bool:
    return set(_configs(messages)) >= set(CONFIGURED)


def _check_config(meter: str, config: dict[str, Any]) -> None:
    assert config["state_topic"] == f"meters/{meter}/agg/60s"
    # Unavailable when either the meter or the bridge is gone.
    assert [entry["topic"] for entry in config["availability"]] == [f"meters/{meter}/status", BRIDGE_STATUS]
    assert config["availability_mode"] == "all"
    assert config["o"]["name"] == "smart-meter-fleet"
    assert len(config["cmps"]) == 6
    assert all(c["qos"] == 1 for c in config["cmps"].values())  # per component: HA does not pass the root's on
    units = sorted((c["device_class"], c["unit_of_measurement"]) for c in config["cmps"].values())
    assert units == [("energy", "kWh")] * 3 + [("power", "kW")] * 3


def _expected(household: str, start: int) -> tuple[float, float]:
    hour = datetime.fromtimestamp(start, UTC).hour
    template = CLASSIC[household]
    return (template.ac_kw if template.ac_on(hour) else 0.0, template.geyser_kw if template.geyser_on(hour) else 0.0)


def _windows(messages: list[Msg], meter: str) -> list[dict[str, Any]]:
    return [json.loads(m.payload) for m in messages if m.topic == f"meters/{meter}/agg/60s"]


def _past_six(messages: list[Msg]) -> bool:
    """A's windows reach 06:01, so they straddle the geyser's switch at 06:00."""
    return any(doc["window_start"].endswith("T06:01:00Z") for doc in _windows(messages, "A"))


def _check_windows(docs: list[dict[str, Any]], household: str) -> None:
    starts = [parse_ts(doc["window_start"]) for doc in docs]
    assert starts == list(range(starts[0], starts[0] + 60 * len(docs), 60)), "consecutive, no gap, no duplicate"
    for i, doc in enumerate(docs):
        start, end = parse_ts(doc["window_start"]), parse_ts(doc["window_end"])
        assert start % 60 == 0
        assert end - start == 60
        assert doc["household"] == household
        assert doc["interval"] == 60
        assert 1 <= doc["samples"] <= 60
        if i > 0:  # the first window may have begun before the bridge heard the meter
            assert doc["samples"] == 60
        ac, geyser = _expected(household, start)
        assert (doc["AC"], doc["Geyser"]) == (ac, geyser)
        assert 0.5 + ac + geyser + 0.1 <= doc["Overall"] <= 0.5 + ac + geyser + 1.0
        assert set(doc["status"]) == {"AC", "Geyser", "Overall"}
        assert set(doc["status"].values()) <= {"Green", "Yellow", "Red"}
        assert doc["level"] in {"Green", "Yellow", "Red"}
    for key in ("ac_kwh", "geyser_kwh", "overall_kwh"):
        registers = [doc[key] for doc in docs]
        assert all(isinstance(r, float) for r in registers), key
        assert registers == sorted(registers), f"{key} went down"
    overall = [doc["overall_kwh"] for doc in docs]
    assert len(set(overall)) == len(overall), "Overall energy grows every window"


def _health(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
        doc = json.loads(response.read())
    assert isinstance(doc, dict)
    return doc


def test_discovery_and_aggregates_for_home_assistant(broker: Proc, tmp_path: Path) -> None:
    port = broker.port or 0
    with (
        collecting(port, ["homeassistant/#"]) as ha,
        collecting(port, ["meters/#"]) as wire,  # everything under meters/, from before the bridge starts
        collecting(port, [BRIDGE_STATUS_SUBSCRIPTION]) as bridges,
    ):
        bridge = start_bridge(port, tmp_path, env={"FLEET_HOUSEHOLDS": ",".join(CONFIGURED)})
        meters: Proc | None = None
        try:
            # 0. The bridge says it is there, retained.
            online = bridges.wait_for(lambda m: m.payload == b"online", timeout=10)
            assert online.topic == BRIDGE_STATUS

            # 1. A discovery config for every configured household, at once, before any meter is heard.
            first = _configs(_collect(ha, _has_configs, timeout=20))
            for meter in CONFIGURED:
                _check_config(meter, first[meter])

            # 2. They are retained: a late subscriber gets them from the broker.
            with collecting(port, ["homeassistant/device/+/config"]) as late:
                retained = _collect(late, _has_configs, timeout=10)
            assert all(m.retain for m in retained)
            assert _configs(retained) == first

            # 3. Home Assistant's birth message makes the bridge publish them all again.
            _drain(ha, [])
            publish.single(
                "homeassistant/status", "online", qos=1, hostname="127.0.0.1", port=port, auth=login("homeassistant")
            )
            again = _collect(ha, _has_configs, timeout=10)
            assert _configs(again) == first

            # 4. Window aggregates on meters/<id>/agg/60s, on schedule, energies growing.
            meters = start_meters(port, list(HOUSEHOLDS), tmp_path, speed=SPEED, start_at=START_AT)
            seen = _collect(wire, _past_six, timeout=30)
            docs = _windows(seen, "A")
            _check_windows(docs, "A")
            assert [doc["Geyser"] for doc in docs[-2:]] == [3.0, 3.0]
            assert any(doc["Geyser"] == 0.0 for doc in docs)  # 05:59, before the switch

            # 5. The newest aggregate is retained.
            with collecting(port, ["meters/A/agg/60s"]) as late:
                newest = late.wait_for(lambda m: True, timeout=10)
            assert newest.retain
            assert parse_ts(json.loads(newest.payload)["window_start"]) >= parse_ts(docs[-1]["window_start"])

            # 6. Home Assistant's status is not a meter message: nothing was rejected.
            health = _health(bridge.port or 0)
            assert health["messages"]["rejected"] == {}
        finally:
            stopped = [(proc, proc.stop()) for proc in (meters, bridge) if proc is not None]
        for proc, code in stopped:
            assert code == 0, f"{proc.name} exited with {code}:\n{proc.log()[-3000:]}"
        _drain(wire, seen)
        # 8. Stopped cleanly (a DISCONNECT: no Will), the bridge said offline itself, retained.
        bridges.wait_for(lambda m: m.payload == b"offline", timeout=10)
    with collecting(port, [BRIDGE_STATUS]) as late:
        assert late.wait_for(lambda m: True, timeout=10).payload == b"offline"

    # 7. Under meters/ only the meters' own topics and the aggregates: the bridge never publishes raw readings.
    for msg in seen:
        parts = msg.topic.split("/")
        assert parts[1] in HOUSEHOLDS, msg.topic  # nothing at all for D, which has no meter
        assert "/".join(parts[2:]) in CHANNEL_TOPICS, msg.topic
    readings = [decode_reading(m.topic, m.payload) for m in seen if m.topic.endswith("/reading")]
    keys = [(r.meter, r.seq) for r in readings]
    assert len(keys) == len(set(keys)), "a reading appeared twice"
    for household in ("B", "C"):
        _check_windows(_windows(seen, household), household)


def test_a_killed_bridge_goes_offline_by_its_last_will(broker: Proc, tmp_path: Path) -> None:
    """Killed outright (no DISCONNECT), the bridge's Last Will says ``offline``, retained: Home Assistant's entities go
    unavailable instead of showing the last aggregates as current."""
    port = broker.port or 0
    with collecting(port, [BRIDGE_STATUS]) as statuses:
        bridge = start_bridge(port, tmp_path)
        try:
            statuses.wait_for(lambda m: m.payload == b"online", timeout=10)
            signal_tree(bridge, signal.SIGKILL)  # gunicorn's master and its worker, which holds the connection
            statuses.wait_for(lambda m: m.payload == b"offline", timeout=10)
        finally:
            bridge.stop(signal.SIGKILL)
    with collecting(port, [BRIDGE_STATUS]) as late:
        retained = late.wait_for(lambda m: True, timeout=10)
    assert (retained.payload, retained.retain) == (b"offline", True)
