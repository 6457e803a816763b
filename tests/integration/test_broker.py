"""The embedded broker: loopback only unless asked, and a clean exit on SIGINT and on SIGTERM."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import paho.mqtt.publish as publish
import pytest

from tests.support.mqtt import collecting
from tests.support.procs import Proc, free_port, login, python_module, start

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
    publish.single("meters/A/status", "online", qos=1, retain=True, hostname="127.0.0.1", port=port, auth=auth)
    with collecting(port, ["meters/+/status"]) as status_sub:  # the bridge's subscription, held while the next connects
        status_sub.wait_for(lambda m: m.retain, timeout=10)
        with collecting(port, ["meters/+/reading"]) as reading_sub:
            publish.single("meters/A/reading", "marker", qos=1, hostname="127.0.0.1", port=port, auth=auth)
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
