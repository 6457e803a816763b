"""The brokers: the embedded one binds loopback only unless asked and exits cleanly on SIGINT and on SIGTERM; both
deliver retained messages only to matching subscriptions and refuse packets over the fleet's size limit."""

from __future__ import annotations

import queue
import signal
import socket
from pathlib import Path

import paho.mqtt.client as mqtt
import paho.mqtt.publish as publish
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from broker.limits import MAX_PACKET_BYTES
from tests.support.mqtt import collecting
from tests.support.procs import LOOPBACK, Proc, free_port, login, python_module, start

pytestmark = pytest.mark.integration


def _listening(port: int) -> set[str]:
    """Local addresses with a TCP socket listening on ``port`` (from /proc/net/tcp)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, port_hex = local.split(":")
        if state == "0A" and int(port_hex, 16) == port:  # 0A = LISTEN
            found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_binds_loopback_and_stops_cleanly(sig: signal.Signals, tmp_path: Path) -> None:
    port = free_port()
    proc = start("broker", python_module("broker", "--port", str(port)), tmp_path)
    try:
        proc.wait_port(port)
        assert _listening(port) == {"127.0.0.1"}
        with collecting(port, ["meters/+/status"]):
            pass  # a real client connects, subscribes and leaves
    finally:
        code = proc.stop(sig)
    assert code == 0, proc.log()
    assert "amqtt broker stopped" in proc.log()


def test_bad_port_is_a_config_error(tmp_path: Path) -> None:
    proc = start("broker", python_module("broker", "--port", "70000"), tmp_path)
    assert proc.popen.wait(timeout=30) == 2
    assert "--port" in proc.log()


def test_retained_messages_go_only_to_matching_subscriptions(broker: Proc) -> None:
    """A subscriber to readings gets no retained status, even while another client subscribes to status.

    amqtt 0.12 sends a connecting client the retained messages of every filter any client holds; on Mosquitto this
    always held, on amqtt ``broker.embedded.FleetBroker`` corrects it.
    """
    port = broker.port or 0
    auth = login("A")
    publish.single(
        "meters/A/status", "online", qos=1, retain=True, hostname="127.0.0.1", port=port, auth=auth, client_id="meter-A"
    )
    with collecting(port, ["meters/+/status"]) as status_sub:  # the bridge's subscription, held while the next connects
        status_sub.wait_for(lambda m: m.retain, timeout=10)
        with collecting(port, ["meters/+/reading"]) as reading_sub:
            publish.single(
                "meters/A/reading", "marker", qos=1, hostname="127.0.0.1", port=port, auth=auth, client_id="meter-A"
            )
            first = reading_sub.wait_for(lambda m: True, timeout=10)
    assert (first.topic, first.payload) == ("meters/A/reading", b"marker")


def test_port_in_use_exits_with_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = start("broker", python_module("broker", "--port", str(port)), tmp_path)
        assert proc.popen.wait(timeout=30) == 1
    last_line = proc.log().strip().splitlines()[-1]
    assert "cannot listen on 127.0.0.1" in last_line
    assert "address already in use" in last_line


@pytest.mark.parametrize("payload_bytes", [8 * 1024 * 1024, MAX_PACKET_BYTES])
def test_a_packet_over_the_limit_never_reaches_a_subscriber(broker: Proc, payload_bytes: int) -> None:
    """Meter A, logged in, publishes a message larger than the limit (8 MB; or just over it): the broker closes its
    connection and no subscriber gets it; the broker keeps serving (A's next connection's marker arrives alone)."""
    port = broker.port or 0
    auth = login("A")
    with collecting(port, ["meters/#"]) as observer:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="meter-A", protocol=mqtt.MQTTv311)
        client.username_pw_set(auth["username"], auth["password"])
        closed: queue.Queue[object] = queue.Queue()
        client.on_disconnect = lambda c, u, f, rc, p: closed.put(rc)
        client.connect(LOOPBACK, port, 30)
        client.loop_start()
        try:
            client.publish("meters/A/reading", bytes(payload_bytes), qos=1)
            closed.get(timeout=30)  # the broker closes the connection (paho would otherwise wait for a PUBACK)
        finally:
            client.disconnect()
            client.loop_stop()
            client._reset_sockets()  # paho 2.2 leaves its wake-up socket pair to the garbage collector
        publish.single(
            "meters/A/reading", "marker", qos=1, hostname=LOOPBACK, port=port, auth=auth, client_id="meter-A"
        )
        first = observer.wait_for(lambda m: True, timeout=30)
    assert (first.topic, first.payload) == ("meters/A/reading", b"marker")
