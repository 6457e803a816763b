"""The embedded broker: loopback only unless asked, and a clean exit on SIGINT and on SIGTERM."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import pytest

from tests.support.mqtt import collecting
from tests.support.procs import free_port, python_module, start

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
