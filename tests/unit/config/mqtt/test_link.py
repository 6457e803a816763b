"""config.mqtt.link: the non-blocking connect, driven step by step against real loopback sockets the test owns (a
listener that completes TCP and reads CONNECT, one that never answers TLS, one whose backlog is full, a closed port),
with a fake clock for the connect deadline: ``connect`` returns at once, and every stage is bounded."""

from __future__ import annotations

import selectors
import socket
import ssl
from collections.abc import Iterator

import pytest

from config.mqtt.connection import MqttConnection
from config.mqtt.link import CONNECT_TIMEOUT_S, resolve
from config.mqtt.packet import split_packets
from tests.support.drive import service

LOOPBACK = "127.0.0.1"
WAIT_S = 10.0


class FakeClock:
    """Monotonic seconds the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def made(clock: FakeClock, tls: ssl.SSLContext | None = None) -> tuple[MqttConnection, list[str]]:
    """A connection and the losses its ``on_disconnect`` reports."""
    conn = MqttConnection("meter-A", username="A", password="pw", tls=tls, clock=clock)
    lost: list[str] = []
    conn.on_disconnect = lost.append
    return conn, lost


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A loopback listener nobody accepts from: the kernel completes TCP, nothing ever answers."""
    with socket.create_server((LOOPBACK, 0)) as server:
        yield server


def test_plain_connect_completes_and_sends_connect(listener: socket.socket) -> None:
    clock = FakeClock()
    conn, lost = made(clock)
    conn.connect(LOOPBACK, listener.getsockname()[1], 30)
    assert conn.socket() is not None
    assert service(conn, lambda: not conn.connecting)
    peer, _ = listener.accept()
    with peer:
        peer.settimeout(WAIT_S)
        data = bytearray(peer.recv(4096))
        packets = list(split_packets(data))
    assert [p.first for p in packets] == [0x10]  # CONNECT, and only that before CONNACK
    assert b"meter-A" in packets[0].body
    assert not conn.connected  # CONNACK not there yet
    clock.now += CONNECT_TIMEOUT_S + 1
    conn.misc()  # past the connect deadline, but TCP is done: the keepalive now watches a silent broker
    assert lost == []
    conn.disconnect()
    assert conn.socket() is None


def test_tls_handshake_never_answered_is_bounded(listener: socket.socket) -> None:
    """TCP completes, the ClientHello goes out, no ServerHello ever comes: connect returned at once, the handshake
    waits on readiness, and the deadline ends the attempt (the blocking connect used to sit in the handshake)."""
    clock = FakeClock()
    conn, lost = made(clock, ssl.create_default_context())
    conn.connect(LOOPBACK, listener.getsockname()[1], 30)
    assert conn.connecting
    assert not service(conn, lambda: not conn.connecting, 0.5)  # the handshake does not finish by itself
    assert isinstance(conn.socket(), ssl.SSLSocket)
    assert conn.connecting
    assert lost == []
    clock.now += CONNECT_TIMEOUT_S - 0.5
    conn.misc()
    assert lost == []
    clock.now += 1.0
    conn.misc()
    assert conn.socket() is None
    assert not conn.connected
    assert len(lost) == 1
    assert "timed out" in lost[0]
    assert "tls" in lost[0]


def test_tcp_connect_that_never_completes_is_bounded() -> None:
    """A listener whose backlog is full drops the SYN: the TCP connect stays in progress until the deadline."""
    with socket.create_server((LOOPBACK, 0), backlog=0) as server:
        port = server.getsockname()[1]
        filler = socket.socket()
        filler.setblocking(False)
        try:
            filler.connect_ex((LOOPBACK, port))
            with selectors.DefaultSelector() as selector:
                selector.register(filler, selectors.EVENT_WRITE)
                assert selector.select(WAIT_S), "the first connection fills the backlog"
            clock = FakeClock()
            conn, lost = made(clock)
            conn.connect(LOOPBACK, port, 30)
            assert conn.connecting
            assert conn.want_write()
            assert not service(conn, lambda: not conn.connecting, 0.5)
            clock.now += CONNECT_TIMEOUT_S
            conn.misc()
            assert conn.socket() is None
            assert len(lost) == 1
            assert "timed out" in lost[0]
            assert "tcp" in lost[0]
        finally:
            filler.close()


def test_refused_port_fails_without_a_connection() -> None:
    with socket.create_server((LOOPBACK, 0)) as server:
        port = server.getsockname()[1]  # closed at once: nothing listens there any more
    conn, lost = made(FakeClock())
    try:
        conn.connect(LOOPBACK, port, 30)
    except ConnectionRefusedError:
        assert conn.socket() is None  # refused at once (loopback): nothing to clean up
        return
    assert service(conn, lambda: conn.socket() is None)
    assert len(lost) == 1
    assert "connect failed" in lost[0]


def test_disconnect_while_connecting_closes_quietly(listener: socket.socket) -> None:
    conn, lost = made(FakeClock(), ssl.create_default_context())
    conn.connect(LOOPBACK, listener.getsockname()[1], 30)
    conn.disconnect()
    assert conn.socket() is None
    assert not conn.connecting
    assert lost == []


def test_resolve_numeric_addresses_without_a_lookup() -> None:
    assert resolve("127.0.0.1", 1883) == (socket.AF_INET, ("127.0.0.1", 1883))
    assert resolve("::1", 1883) == (socket.AF_INET6, ("::1", 1883, 0, 0))
    family, address = resolve("localhost", 1883)  # looked up once, then cached
    assert family in (socket.AF_INET, socket.AF_INET6)
    assert address[1] == 1883
    assert resolve("localhost", 1883) == (family, address)
