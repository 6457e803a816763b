"""A meter whose command subscription is refused asks for it again on the same connection, after a back-off of its
own, until the broker grants it: without that it would never hear a replay request (a NATS node refuses the
subscription while JetStream elects a new leader after a node died, seen in test_nats_faults.py).

The broker here is a loopback socket the test owns and scripts (CONNACK, SUBACK granted or refused); the meter is a
real ``MeterLink`` driven on readiness, as the fleet loop drives it."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest

from config.mqtt.packet import CONNECT, SUBACK_FAILURE, SUBSCRIBE, Packet, packet_id, split_packets
from config.settings import parse_broker_urls
from config.topics import replay_topic
from simulator.live.link import RECONNECT_MIN_S, MeterLink
from tests.support.drive import service

LOOPBACK = "127.0.0.1"
WAIT_S = 10.0
CONNACK_OK = bytes((0x20, 2, 0, 0))


class Broker:
    """The far end of one accepted connection: the packets it got, and what it sends back."""

    def __init__(self, listener: socket.socket) -> None:
        self.listener = listener
        self.peer: socket.socket | None = None
        self.buffer = bytearray()
        self.got: list[Packet] = []

    def take(self) -> None:
        """Accept (once) and read whatever has arrived, without blocking."""
        if self.peer is None:
            self.listener.setblocking(False)
            try:
                self.peer, _ = self.listener.accept()
            except BlockingIOError:
                return
            self.peer.setblocking(False)
        try:
            self.buffer += self.peer.recv(65536)
        except BlockingIOError:
            return
        self.got += split_packets(self.buffer)

    def send(self, data: bytes) -> None:
        assert self.peer is not None
        self.peer.sendall(data)

    def subscribes(self) -> list[Packet]:
        return [p for p in self.got if p.first == SUBSCRIBE]


def drive(link: MeterLink, broker: Broker, done: Callable[[], bool]) -> None:
    """Drive the meter's connection on readiness and let the broker read, until ``done()``; bounded."""
    assert service(link.client, done, each=broker.take), "not done in time, or the meter's connection was lost"


def suback(mid: int, code: int) -> bytes:
    return bytes((0x90, 3)) + mid.to_bytes(2, "big") + bytes((code,))


@pytest.fixture
def connected() -> Iterator[tuple[MeterLink, Broker, list[MeterLink]]]:
    """Meter A connected to the scripted broker, its first SUBSCRIBE received; the links its ``on_refused`` got."""
    with socket.create_server((LOOPBACK, 0)) as listener:
        link = MeterLink("A", parse_broker_urls(f"mqtt://A:pw@{LOOPBACK}:{listener.getsockname()[1]}"))
        refused: list[MeterLink] = []
        link.on_refused = refused.append
        broker = Broker(listener)
        assert link.try_connect(0.0)
        drive(link, broker, lambda: any(p.first == CONNECT for p in broker.got))
        broker.send(CONNACK_OK)
        drive(link, broker, lambda: len(broker.subscribes()) == 1)
        assert link.connected
        try:
            yield link, broker, refused
        finally:
            link.client.disconnect()
            if broker.peer is not None:
                broker.peer.close()


def test_a_refused_command_subscription_is_asked_again_until_granted(
    connected: tuple[MeterLink, Broker, list[MeterLink]],
) -> None:
    link, broker, refused = connected
    first = broker.subscribes()[0]
    assert replay_topic("A").encode() in first.body
    broker.send(suback(packet_id(first), SUBACK_FAILURE))
    drive(link, broker, lambda: refused == [link])
    assert link.resubscribe_at is None  # the owner (the fleet loop) schedules it
    delays = []
    for attempt in range(3):  # refused three times: the back-off doubles each time
        delays.append(link.resubscribe_later(100.0, 0.999))
        assert link.resubscribe_at == pytest.approx(100.0 + delays[-1])
        link.resubscribe(link.resubscribe_at - 0.01)  # not yet
        broker.take()
        assert len(broker.subscribes()) == 1 + attempt
        link.resubscribe(link.resubscribe_at)
        drive(link, broker, lambda n=attempt: len(broker.subscribes()) == 2 + n)
        again = broker.subscribes()[-1]
        assert replay_topic("A").encode() in again.body
        assert packet_id(again) != packet_id(first)
        if attempt < 2:
            broker.send(suback(packet_id(again), SUBACK_FAILURE))
            drive(link, broker, lambda n=attempt: len(refused) == 2 + n)
    assert delays == pytest.approx([RECONNECT_MIN_S * 0.999 * 2**k for k in range(3)])
    assert len(refused) == 3
    assert link.resubscribe_at is None  # the third one waits for its SUBACK


def test_a_granted_subscription_resets_the_back_off(connected: tuple[MeterLink, Broker, list[MeterLink]]) -> None:
    link, broker, refused = connected
    broker.send(suback(packet_id(broker.subscribes()[0]), SUBACK_FAILURE))
    drive(link, broker, lambda: len(refused) == 1)
    assert link.resubscribe_later(0.0, 0.999) == pytest.approx(RECONNECT_MIN_S * 0.999)
    link.resubscribe(10.0)
    drive(link, broker, lambda: len(broker.subscribes()) == 2)
    broker.send(suback(packet_id(broker.subscribes()[1]), 0))  # granted (QoS 0)
    # A later refusal (the SUBACKs are read in order: the grant first) starts from the least back-off again.
    broker.send(suback(packet_id(broker.subscribes()[1]), SUBACK_FAILURE))
    drive(link, broker, lambda: len(refused) == 2)
    assert link.resubscribe_later(20.0, 0.999) == pytest.approx(RECONNECT_MIN_S * 0.999)
