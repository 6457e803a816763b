"""The MQTT 3.1.1 packets the meters and the bridge send and receive, as bytes (pure: no sockets, no clock).

A client of this fleet needs a small part of MQTT 3.1.1 (OASIS standard, 2014): CONNECT (client id, clean session,
Last Will, username and password, keepalive), PUBLISH at QoS 0 or 1 both ways, PUBACK both ways, SUBSCRIBE/SUBACK and
UNSUBSCRIBE/UNSUBACK (one filter or several a packet), PINGREQ/PINGRESP and DISCONNECT. ``config.mqtt.connection``
drives these over a meter's non-blocking socket and ``bridge.ingest.subscriber`` over the bridge's; this module only
builds and parses them. Why it exists: paho spends about 40 us of Python per published reading and its PUBACK (three
``recv`` calls per packet, a ``ReasonCode`` and ``Properties`` object per PUBACK even on 3.1.1), and about as much per
message received (five ``recv`` and two ``send``), which is most of what one process can spend (docs/performance.md).

A receiver takes every whole packet off its buffer at once (``split_packets``) and may acknowledge a whole chunk's
QoS 1 messages in one write (``puback_packets``).

Sizes: a packet's remaining length is at most 268,435,455 bytes (four length bytes); strings are UTF-8 with a
two-byte length prefix, at most 65,535 bytes.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import dataclass
from typing import Final, NamedTuple

CONNECT: Final = 0x10
CONNACK: Final = 0x20
PUBLISH: Final = 0x30
PUBACK: Final = 0x40
SUBSCRIBE: Final = 0x82  # type 8 with the reserved flags 0b0010
SUBACK: Final = 0x90
UNSUBSCRIBE: Final = 0xA2  # type 10 with the reserved flags 0b0010
UNSUBACK: Final = 0xB0
MAX_MID: Final = 0xFFFF  # message ids run 1..65,535
PINGREQ: Final = 0xC0
PINGRESP: Final = 0xD0
DISCONNECT: Final = 0xE0

PINGREQ_PACKET: Final = bytes((PINGREQ, 0))
DISCONNECT_PACKET: Final = bytes((DISCONNECT, 0))
MAX_REMAINING: Final = 268_435_455
MAX_STRING: Final = 65_535
DUP_FLAG: Final = 0x08
PROTOCOL_LEVEL_311: Final = 4
SUBACK_FAILURE: Final = 0x80

CONNACK_REASONS: Final = {
    0: "accepted",
    1: "unacceptable protocol version",
    2: "identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorised",
}


class ProtocolError(ValueError):
    """The peer sent bytes that are not MQTT 3.1.1 as a client may receive it; the connection must be closed."""


def remaining_length(n: int) -> bytes:
    """The variable-length encoding of a packet's remaining length (1 to 4 bytes)."""
    if 0 <= n < 128:  # the common cases (a PUBACK, a reading) without the general loop
        return bytes((n,))
    if 128 <= n < 16_384:
        return bytes(((n & 0x7F) | 0x80, n >> 7))
    if not 0 <= n <= MAX_REMAINING:
        raise ValueError(f"remaining length {n} out of range")
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def string(text: str | bytes) -> bytes:
    """A two-byte length prefix and the UTF-8 bytes."""
    data = text.encode() if isinstance(text, str) else text
    if len(data) > MAX_STRING:
        raise ValueError(f"string of {len(data)} bytes is longer than {MAX_STRING}")
    return len(data).to_bytes(2, "big") + data


def _packet(first: int, body: bytes) -> bytes:
    return bytes((first,)) + remaining_length(len(body)) + body


@dataclass(frozen=True)
class Will:
    """The Last Will: published by the broker when the connection ends without a DISCONNECT."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


def connect_packet(
    client_id: str,
    keepalive_s: int,
    *,
    clean_session: bool = True,
    will: Will | None = None,
    username: str | None = None,
    password: str | None = None,
) -> bytes:
    """CONNECT (MQTT 3.1.1, protocol level 4)."""
    if not 0 <= keepalive_s <= 0xFFFF:
        raise ValueError(f"keepalive {keepalive_s} s out of range")
    if password is not None and username is None:
        raise ValueError("MQTT 3.1.1 needs a user name with a password")
    flags = 0x02 if clean_session else 0
    payload = string(client_id)
    if will is not None:
        if will.qos not in (0, 1, 2):
            raise ValueError(f"will QoS {will.qos}")
        flags |= 0x04 | (will.qos << 3) | (0x20 if will.retain else 0)
        payload += string(will.topic) + string(will.payload)
    if username is not None:
        flags |= 0x80
        payload += string(username)
    if password is not None:
        flags |= 0x40
        payload += string(password)
    header = string("MQTT") + bytes((PROTOCOL_LEVEL_311, flags)) + keepalive_s.to_bytes(2, "big")
    return _packet(CONNECT, header + payload)


def publish_packet(topic: bytes, payload: bytes, qos: int, mid: int = 0, *, retain: bool = False) -> bytes:
    """PUBLISH; ``topic`` already length-prefixed (``string(topic)``), ``mid`` only for QoS 1."""
    if qos == 0:
        body = topic + payload
    elif qos == 1:
        body = topic + mid.to_bytes(2, "big") + payload
    else:
        raise ValueError(f"QoS {qos} is not supported here")
    return _packet(PUBLISH | (qos << 1) | (1 if retain else 0), body)


def as_duplicate(packet: bytes) -> bytes:
    """The same PUBLISH with its DUP flag set (a QoS 1 message sent again)."""
    return bytes((packet[0] | DUP_FLAG,)) + packet[1:]


def puback_packet(mid: int) -> bytes:
    """PUBACK for an incoming QoS 1 PUBLISH."""
    return bytes((PUBACK, 2)) + mid.to_bytes(2, "big")


def subscribe_packet(mid: int, topic: str, qos: int) -> bytes:
    """SUBSCRIBE to one topic filter."""
    return subscribe_many_packet(mid, [(topic, qos)])


def subscribe_many_packet(mid: int, filters: Sequence[tuple[str, int]]) -> bytes:
    """SUBSCRIBE to several ``(filter, qos)`` at once (the SUBACK has one return code per filter, in order)."""
    if not filters:
        raise ValueError("a SUBSCRIBE needs at least one filter")
    body = mid.to_bytes(2, "big") + b"".join(string(topic) + bytes((qos,)) for topic, qos in filters)
    return _packet(SUBSCRIBE, body)


def unsubscribe_packet(mid: int, topics: Sequence[str]) -> bytes:
    """UNSUBSCRIBE from the filters ``topics``."""
    if not topics:
        raise ValueError("an UNSUBSCRIBE needs at least one filter")
    return _packet(UNSUBSCRIBE, mid.to_bytes(2, "big") + b"".join(string(topic) for topic in topics))


_PUBACK_HEADER: Final = bytes((PUBACK, 2))


def puback_packets(mids: Sequence[int]) -> bytes:
    """The PUBACKs of several incoming QoS 1 messages, back to back (one write acknowledges them all)."""
    header = _PUBACK_HEADER
    return b"".join([header + mid.to_bytes(2, "big") for mid in mids])


class Packet(NamedTuple):
    """One packet received: its first byte (type and flags) and its body (variable header and payload)."""

    first: int
    body: bytes

    @property
    def kind(self) -> int:
        """The packet type in the high nibble (flags cleared), e.g. ``PUBLISH``."""
        return self.first & 0xF0


def split_packets(buffer: bytearray) -> list[Packet]:
    """Take every complete packet off the front of ``buffer`` (what is left is the start of the next one)."""
    packets: list[Packet] = []
    pos, size = 0, len(buffer)
    while size - pos >= 2:
        first, at = buffer[pos], pos + 1
        length, shift, complete = 0, 0, False
        while at < size:
            byte = buffer[at]
            at += 1
            length |= (byte & 0x7F) << shift
            if not byte & 0x80:
                complete = True
                break
            shift += 7
            if shift > 21:
                raise ProtocolError("remaining length longer than 4 bytes")
        if not complete or at + length > size:
            break  # the rest of this packet has not arrived yet
        packets.append(Packet(first, bytes(buffer[at : at + length])))
        pos = at + length
    if pos:
        del buffer[:pos]
    return packets


def connack_code(packet: Packet) -> int:
    """The return code of a CONNACK (0: accepted)."""
    if packet.first != CONNACK or len(packet.body) != 2:
        raise ProtocolError("malformed CONNACK")
    return packet.body[1]


def connack_session_present(packet: Packet) -> bool:
    """Whether the broker kept the client's session (CONNACK's session present flag; clean session off only)."""
    if packet.first != CONNACK or len(packet.body) != 2:
        raise ProtocolError("malformed CONNACK")
    return bool(packet.body[0] & 0x01)


def suback_codes(packet: Packet) -> bytes:
    """The return codes of a SUBACK, one per filter of its SUBSCRIBE (0-2: granted QoS, ``SUBACK_FAILURE``)."""
    if len(packet.body) < 3:
        raise ProtocolError("SUBACK without a return code")
    return packet.body[2:]


def packet_id(packet: Packet) -> int:
    """The packet identifier of a PUBACK or SUBACK."""
    if len(packet.body) < 2:
        raise ProtocolError(f"packet 0x{packet.first:02x} too short for an identifier")
    return int.from_bytes(packet.body[:2], "big")


@dataclass(frozen=True)
class Message:
    """An incoming PUBLISH."""

    topic: str
    payload: bytes
    qos: int
    mid: int
    retain: bool


class RawPublish(NamedTuple):
    """An incoming PUBLISH with its topic as the bytes it came as (the receiver decides what a bad topic means)."""

    topic: bytes
    payload: bytes
    qos: int
    mid: int
    retain: bool = False


def parse_publish_raw(packet: Packet) -> RawPublish:
    """An incoming PUBLISH, topic undecoded (QoS 0 or 1; a client that subscribed at QoS 1 at most never receives
    QoS 2)."""
    first, body = packet
    qos = (first >> 1) & 0x03
    if qos > 1:
        raise ProtocolError(f"PUBLISH with QoS {qos}")
    if len(body) < 2:
        raise ProtocolError("PUBLISH too short")
    at = 2 + ((body[0] << 8) | body[1])
    if qos:
        if len(body) < at + 2:
            raise ProtocolError("PUBLISH topic runs past the packet")
        return RawPublish(body[2:at], body[at + 2 :], 1, (body[at] << 8) | body[at + 1], (first & 0x01) == 1)
    if len(body) < at:
        raise ProtocolError("PUBLISH topic runs past the packet")
    return RawPublish(body[2:at], body[at:], 0, 0, (first & 0x01) == 1)


def parse_publish(packet: Packet) -> Message:
    """An incoming PUBLISH (QoS 0 or 1), its topic decoded (not UTF-8: ``ProtocolError``)."""
    return as_message(parse_publish_raw(packet))


def as_message(raw: RawPublish) -> Message:
    """An incoming PUBLISH with its topic decoded (not UTF-8: ``ProtocolError``)."""
    try:
        topic = raw.topic.decode()
    except UnicodeDecodeError as exc:
        raise ProtocolError("PUBLISH topic is not UTF-8") from exc
    return Message(topic, raw.payload, raw.qos, raw.mid, raw.retain)


def next_mid(previous: int, in_flight: Container[int]) -> int:
    """The message id after ``previous`` (1..65,535, wrapping) that is not ``in_flight``."""
    mid = previous
    for _ in range(MAX_MID):
        mid = mid % MAX_MID + 1
        if mid not in in_flight:
            return mid
    raise RuntimeError("every message id is in flight")  # pragma: no cover - the callers bound in-flight far lower
