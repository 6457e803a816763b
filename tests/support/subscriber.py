"""Driving ``bridge.ingest.subscriber.Subscriber`` without a broker: real packet bytes in, the bytes it writes recorded.

Messages go in as the PUBLISH packets a broker would send (``config.mqtt.packet``), through the same chunk handler the
network thread uses; what the subscriber writes (SUBSCRIBE, UNSUBSCRIBE, PUBLISH, PUBACK) is captured by replacing its
``_send`` and decoded here, so tests see what would have gone on the wire.
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.ingest.subscriber import Subscriber
from config.mqtt.packet import (
    PUBACK,
    PUBLISH,
    SUBSCRIBE,
    UNSUBSCRIBE,
    Packet,
    packet_id,
    parse_publish,
    publish_packet,
    split_packets,
    string,
)


def publish_bytes(topic: bytes, payload: bytes, qos: int = 0, mid: int = 1) -> bytes:
    """A PUBLISH as the broker sends it."""
    return publish_packet(string(topic), payload, qos, mid)


def deliver(subscriber: Subscriber, topic: bytes, payload: bytes, qos: int = 0, mid: int = 1) -> bytes:
    """One message through the subscriber's chunk handler; the PUBACKs it would send."""
    return subscriber._handle(split_packets(bytearray(publish_bytes(topic, payload, qos, mid))))


def _strings(body: bytes) -> list[bytes]:
    out, at = [], 0
    while at < len(body):
        n = int.from_bytes(body[at : at + 2], "big")
        out.append(body[at + 2 : at + 2 + n])
        at += 2 + n
    return out


@dataclass(frozen=True)
class Written:
    """One packet the subscriber wrote, decoded: ``kind`` and what it carries."""

    kind: str
    topics: list[tuple[str, int]]  # SUBSCRIBE: (filter, qos); UNSUBSCRIBE: (filter, 0); PUBLISH: (topic, qos)
    payload: bytes = b""
    retain: bool = False
    mid: int = 0


def decode(packet: Packet) -> Written:
    """A packet a client writes, as ``Written``."""
    kind, body = packet.kind, packet.body
    if packet.first == SUBSCRIBE:
        filters, at = [], 2
        while at < len(body):
            n = int.from_bytes(body[at : at + 2], "big")
            filters.append((body[at + 2 : at + 2 + n].decode(), body[at + 2 + n]))
            at += 3 + n
        return Written("subscribe", filters, mid=packet_id(packet))
    if packet.first == UNSUBSCRIBE:
        return Written("unsubscribe", [(t.decode(), 0) for t in _strings(body[2:])], mid=packet_id(packet))
    if kind == PUBLISH:
        message = parse_publish(packet)
        return Written("publish", [(message.topic, message.qos)], message.payload, message.retain, message.mid)
    if kind == PUBACK:
        return Written("puback", [], mid=packet_id(packet))
    return Written(f"0x{packet.first:02x}", [])


class Wire:
    """Stands in for the socket: ``subscriber._send`` writes here (``accept``: whether writes succeed)."""

    def __init__(self, subscriber: Subscriber, accept: bool = True) -> None:
        self.data = bytearray()
        self.accept = accept
        subscriber._send = self.send  # type: ignore[method-assign]

    def send(self, data: bytes) -> bool:
        """What the subscriber writes."""
        if self.accept:
            self.data += data
        return self.accept

    def packets(self) -> list[Written]:
        """Everything written so far, decoded (and forgotten)."""
        out = [decode(p) for p in split_packets(self.data)]
        self.data.clear()
        return out
