"""The bridge's health tells the truth, on both brokers: a dead MQTT session is noticed and recovered from, and
``/healthz`` says degraded while online meters are silent.

The dead session is the one an attacker's probe produced: a second client connects with the bridge's client id, and
leaves. On amqtt the bridge's connection then stays open and silent for good (its client sees nothing wrong: no
disconnect, keepalives answered); Mosquitto disconnects the bridge, which reconnects and takes the session back.
"""

from __future__ import annotations

import json
import queue
import signal
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client.parser import text_string_to_metric_families

from config.credentials import BRIDGE_USER
from config.topics import status_topic
from config.wire import ONLINE
from tests.support.procs import (
    LOOPBACK,
    Proc,
    http_get,
    login,
    running,
    signal_tree,
    start_bridge,
    start_meters,
    wait_until,
)

pytestmark = pytest.mark.integration

BRIDGE_ID = "bridge-health"
SPEED = 10.0
WAIT_S = 60.0  # generous: the machine is shared; the bridge's own bounds are a few seconds


def _health(port: int) -> tuple[int, dict[str, object]]:
    status, body = http_get(port, "/healthz")
    doc = json.loads(body)
    assert isinstance(doc, dict)
    return status, doc


def _received(port: int, meter: str) -> int:
    status, body = http_get(port, "/api/meters")
    assert status == 200
    return int(json.loads(body)["meters"].get(meter, {}).get("received", 0))


def _metric(port: int, name: str) -> float:
    status, body = http_get(port, "/metrics")
    assert status == 200
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    raise AssertionError(f"{name} not in /metrics")


class Intruder:
    """A client that connects with the bridge's client id (as the attacker did), and never reconnects by itself."""

    def __init__(self, port: int, user: str = BRIDGE_USER) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=BRIDGE_ID,
            clean_session=False,
            protocol=mqtt.MQTTv311,
            reconnect_on_failure=False,
        )
        self.events: queue.Queue[str] = queue.Queue()
        self.client.username_pw_set(**login(user))
        self.client.on_connect = lambda c, u, f, rc, p: self.events.put(f"connect {rc}")
        self.client.on_disconnect = lambda c, u, f, rc, p: self.events.put(f"disconnect {rc}")
        self.client.connect(LOOPBACK, port, 60)
        self.client.loop_start()
        assert self.events.get(timeout=WAIT_S) == "connect Success"

    def leave(self) -> None:
        """Disconnect, stop the network thread and close every socket."""
        self.client.disconnect()
        self.client.loop_stop()
        self.client._reset_sockets()  # paho 2.2 leaves its wake-up socket pair to the garbage collector


def test_bridge_recovers_from_a_stolen_session(broker: Proc, broker_kind: str, tmp_path: Path) -> None:
    """A second client takes the bridge's client id, then leaves. amqtt leaves the bridge's connection open and silent
    for good: the bridge must notice (its probe stops coming back) and force a reconnect. Mosquitto disconnects the
    bridge, whose paho reconnects. Either way the bridge receives again, by itself."""
    port = broker.port or 0
    env = {"FLEET_BRIDGE_ID": BRIDGE_ID, "FLEET_SPEED": str(SPEED), "FLEET_HOUSEHOLDS": "A"}
    bridge = start_bridge(port, tmp_path / "bridge", env={**env, "FLEET_HA_DISCOVERY": "false"})
    meters = start_meters(port, ["A"], tmp_path / "meters", speed=SPEED)
    with running(bridge, meters):
        http = bridge.port or 0
        wait_until(lambda: _received(http, "A") >= 5, WAIT_S, "the bridge receives A's readings")
        assert _metric(http, "fleet_bridge_mqtt_forced_reconnects_total") == 0

        # The bridge user itself (a second bridge given the same FLEET_BRIDGE_ID): client-id rules cannot refuse it.
        intruder = Intruder(port)
        try:
            # amqtt: the bridge still receives while the intruder is there; its session dies when the intruder leaves.
            during = _received(http, "A")
            wait_until(lambda: _received(http, "A") >= during + 10, WAIT_S, "readings while the intruder is there")
        finally:
            intruder.leave()

        after = _received(http, "A")
        wait_until(lambda: _received(http, "A") >= after + 5, WAIT_S, "the bridge receives A's readings again")
        if broker_kind == "amqtt":  # amqtt never told the bridge: only its watchdog can have noticed
            assert _metric(http, "fleet_bridge_mqtt_forced_reconnects_total") >= 1
            assert "forcing a reconnect" in bridge.log()
        wait_until(lambda: _health(http)[0] == 200, WAIT_S, "/healthz is ok again")
        _, doc = _health(http)
        assert doc["status"] == "ok"
        assert doc["mqtt"] == "connected"
        assert _metric(http, "fleet_bridge_mqtt_connected") == 1


def test_healthz_degraded_while_online_meters_are_silent(broker: Proc, tmp_path: Path) -> None:
    """Meter C says it is online (retained status) and never sends: /healthz turns 503 degraded, naming it, while the
    session itself stays alive (the bridge's probe); once C sends readings it is ok again."""
    port = broker.port or 0
    bridge = start_bridge(port, tmp_path / "bridge", env={"FLEET_SPEED": str(SPEED), "FLEET_HOUSEHOLDS": "C"})
    with running(bridge):
        http = bridge.port or 0
        status, doc = _health(http)
        assert (status, doc["status"]) == (200, "ok"), doc  # no meter online: nothing is missing

        publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="meter-C", protocol=mqtt.MQTTv311)
        publisher.username_pw_set(**login("C"))
        publisher.connect(LOOPBACK, port, 30)
        publisher.loop_start()
        try:
            info = publisher.publish(status_topic("C"), ONLINE.encode(), qos=1, retain=True)
            info.wait_for_publish(timeout=WAIT_S)
            assert info.is_published()
        finally:
            publisher.disconnect()
            publisher.loop_stop()
            publisher._reset_sockets()

        wait_until(lambda: _health(http)[0] == 503, WAIT_S, "/healthz says degraded")
        status, doc = _health(http)
        assert doc["status"] == "degraded", doc
        reasons = doc["reason"]
        assert isinstance(reasons, list)
        assert len(reasons) == 1, reasons  # the meters' silence only: the session is alive
        assert "online" in reasons[0], reasons
        assert doc["error"] == reasons[0]
        assert doc["mqtt"] == "connected"
        # Nothing but the bridge's own probe reaches it now: its session is shown alive by that alone.
        age = doc["last_message_age_s"]
        assert isinstance(age, int | float)
        assert age < 10
        assert _metric(http, "fleet_bridge_mqtt_probes_received_total") >= 1

        meters = start_meters(port, ["C"], tmp_path / "meters", speed=SPEED)
        with running(meters):
            wait_until(lambda: _health(http)[0] == 200, WAIT_S, "/healthz is ok once C sends")
            _, doc = _health(http)
            assert doc["status"] == "ok"
            assert "reason" not in doc


def test_ingest_lag_grows_while_readings_stop_coming_and_recovers(broker: Proc, tmp_path: Path) -> None:
    """``fleet_bridge_ingest_lag_seconds`` through the real app: about 0 while A's readings come, growing while A's
    process is frozen (readings stop arriving, as when they wait before a bridge that fell behind), back down once A
    resumes and its missed seconds come in; the store's queue depth is a sample all along."""
    port = broker.port or 0
    bridge = start_bridge(port, tmp_path / "bridge", env={"FLEET_SPEED": str(SPEED), "FLEET_HOUSEHOLDS": "A"})
    meters = start_meters(port, ["A"], tmp_path / "meters", speed=SPEED)
    lag = "fleet_bridge_ingest_lag_seconds"
    with running(bridge, meters):
        http = bridge.port or 0
        wait_until(lambda: _received(http, "A") >= 5, WAIT_S, "the bridge receives A's readings")
        assert _metric(http, "fleet_bridge_ingest_queue_depth") >= 0
        assert _metric(http, "fleet_bridge_ingest_queue_limit") > 0
        wait_until(lambda: _metric(http, lag) < 2, WAIT_S, "A is live: the bridge is not behind")
        signal_tree(meters, signal.SIGSTOP)
        try:
            wait_until(lambda: _metric(http, lag) >= 3, WAIT_S, "the lag grows while nothing arrives")
        finally:
            signal_tree(meters, signal.SIGCONT)
        wait_until(lambda: _metric(http, lag) < 2, WAIT_S, "the lag shrinks once A's seconds arrive again")
