"""The embedded broker enforces keepalive (MQTT 3.1.1 section 3.1.2.10): a client that sends nothing for 1.5 x its
keepalive loses its connection and its Will is published; one that keeps pinging stays connected.

The client here is raw bytes over a socket (``config.mqtt.packet``), so nothing pings behind the test's back.
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from config.credentials import meter_client_id
from config.mqtt.packet import (
    CONNACK,
    PINGREQ_PACKET,
    PINGRESP,
    Packet,
    Will,
    connack_code,
    connect_packet,
    split_packets,
)
from config.topics import status_topic
from tests.support.mqtt import collecting
from tests.support.procs import LOOPBACK, Proc, login, start_broker

pytestmark = pytest.mark.integration

KEEPALIVE_S = 1  # the broker gives up after 1.5 s of silence
WAIT_S = 1.5 * KEEPALIVE_S + 5  # how long the test waits for the broker to hang up (a bound on the wait, no assert)
PINGS = 8  # a ping every half keepalive: 4 s, over two and a half times the broker's 1.5 s


@pytest.fixture
def amqtt_broker(tmp_path: Path) -> Iterator[Proc]:
    """The embedded broker (``python -m broker``) on a free loopback port."""
    proc = start_broker("amqtt", tmp_path / "logs")
    try:
        yield proc
    finally:
        proc.stop()


def _connect(port: int, meter_id: str) -> socket.socket:
    """A raw connection of meter ``meter_id``, keepalive ``KEEPALIVE_S``, Will ``offline`` (retained, QoS 1), its
    CONNACK read."""
    auth = login(meter_id)
    sock = socket.create_connection((LOOPBACK, port), timeout=10)
    will = Will(status_topic(meter_id), b"offline")
    sock.sendall(
        connect_packet(
            meter_client_id(meter_id), KEEPALIVE_S, will=will, username=auth["username"], password=auth["password"]
        )
    )
    connack = _next_packet(sock, bytearray(), 10)
    assert connack is not None, "the broker closed the connection instead of a CONNACK"
    assert connack.first == CONNACK
    assert connack_code(connack) == 0
    return sock


def _next_packet(sock: socket.socket, buffer: bytearray, timeout_s: float) -> Packet | None:
    """The next packet the broker sends; None once it closed the connection; TimeoutError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    for _ in range(1000):  # a few reads a packet at most; bounded in time too
        packets = split_packets(buffer)
        if packets:
            assert len(packets) == 1, packets
            return packets[0]
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        sock.settimeout(remaining)
        try:
            data = sock.recv(4096)
        except TimeoutError:
            break
        except ConnectionResetError:
            return None  # the broker aborted the connection
        if not data:
            return None
        buffer += data
    raise TimeoutError(f"nothing from the broker within {timeout_s} s")


def test_a_silent_client_is_disconnected_and_its_will_published(amqtt_broker: Proc) -> None:
    port = amqtt_broker.port or 0
    with collecting(port, [status_topic("A")]) as statuses:
        sock = _connect(port, "A")
        with sock:
            silent_from = time.monotonic()
            assert _next_packet(sock, bytearray(), WAIT_S) is None  # the broker hangs up: no packet, the end
            closed_after = time.monotonic() - silent_from
        will = statuses.wait_for(lambda m: m.payload == b"offline", WAIT_S)
    print(f"\nconnection closed {closed_after:.2f} s after the last packet (keepalive {KEEPALIVE_S} s)")
    assert will.topic == status_topic("A")
    # The Will was retained: a newcomer is told the meter is offline.
    with collecting(port, [status_topic("A")]) as newcomer:
        retained = newcomer.wait_for(lambda m: True, 10)
    assert (retained.payload, retained.retain) == (b"offline", True)
    assert "silent for 1.5 s (1.5 x its keepalive)" in amqtt_broker.log()


def test_a_client_that_keeps_pinging_stays_connected(amqtt_broker: Proc) -> None:
    port = amqtt_broker.port or 0
    with collecting(port, [status_topic("A")]) as statuses, _connect(port, "A") as sock:
        buffer = bytearray()
        for _ in range(PINGS):
            # Half a keepalive without a packet: the broker must neither close the connection nor send anything.
            readable, _, _ = select.select([sock], [], [], KEEPALIVE_S / 2)
            assert not readable, f"the broker sent or closed: {sock.recv(4096)!r}"
            sock.sendall(PINGREQ_PACKET)
            pingresp = _next_packet(sock, buffer, 10)
            assert pingresp is not None, "the broker closed the connection of a client that pings"
            assert pingresp.first == PINGRESP
        assert statuses.messages.empty(), "a Will was published while the client was connected"
    assert "silent for" not in amqtt_broker.log()
