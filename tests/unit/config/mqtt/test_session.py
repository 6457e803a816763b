"""config.mqtt.session without sockets: bytes and the time go in, bytes to send and events come out."""

from __future__ import annotations

import pytest

from config.mqtt.packet import (
    DUP_FLAG,
    PINGREQ_PACKET,
    PINGRESP,
    PUBLISH,
    ProtocolError,
    RawPublish,
    connect_packet,
    parse_publish,
    puback_packet,
    publish_packet,
    split_packets,
    string,
)
from config.mqtt.session import KEEPALIVE_DEAD, Connack, Session, Suback

TOPIC = string("meters/A/reading")
CONNACK_OK = b"\x20\x02\x00\x00"
T0 = 1000.0


def connected(keepalive_s: int = 30, max_inflight: int = 10_000) -> Session:
    """A session whose CONNECT went out at ``T0`` and whose CONNACK accepted it."""
    session = Session(keepalive_s, max_inflight)
    session.connect(T0, "meter-A")
    assert session.receive(CONNACK_OK, T0) == [Connack(0, False, b"")]
    return session


def published(data: bytes) -> list[tuple[int, int, bool, bytes]]:
    """(mid, qos, dup, payload) of each PUBLISH in ``data``."""
    packets = split_packets(bytearray(data))
    return [
        (message.mid, message.qos, bool(packet.first & DUP_FLAG), message.payload)
        for packet, message in ((p, parse_publish(p)) for p in packets)
    ]


def test_connect_is_the_connect_packet_with_the_sessions_keepalive() -> None:
    session = Session(keepalive_s=45)
    assert session.connect(T0, "meter-A", username="A", password="pw") == connect_packet(
        "meter-A", 45, username="A", password="pw"
    )
    assert not session.connected


def test_resend_after_reconnect_is_oldest_first_with_dup_and_the_same_ids() -> None:
    session = connected()
    sent = [session.publish(TOPIC, f"r{i}".encode(), 1) for i in range(4)]
    assert [published(p or b"")[0][:3] for p in sent] == [(1, 1, False), (2, 1, False), (3, 1, False), (4, 1, False)]
    assert session.receive(puback_packet(2), T0 + 1) == [2]  # acknowledged: not sent again
    session.lost()
    assert session.publish(TOPIC, b"r4", 1) == b""  # held while disconnected
    assert session.publish(TOPIC, b"q0", 0) == b""  # QoS 0 while disconnected: dropped
    session.connect(T0 + 5, "meter-A")
    events = session.receive(CONNACK_OK, T0 + 6)
    assert len(events) == 1
    assert isinstance(events[0], Connack)
    assert published(events[0].resend) == [
        (1, 1, True, b"r0"),
        (3, 1, True, b"r2"),
        (4, 1, True, b"r3"),
        (5, 1, True, b"r4"),
    ]
    assert session.connected
    assert session.connack(0) == events[0].resend  # a shell that reads the CONNACK itself gets the same bytes


def test_a_refused_connack_resends_nothing_and_keeps_the_messages() -> None:
    session = Session()
    session.publish(TOPIC, b"r0", 1)
    session.connect(T0, "meter-A")
    assert session.receive(b"\x20\x02\x00\x05", T0) == [Connack(5, False, b"")]
    assert not session.connected
    assert list(session.inflight) == [1]


def test_an_unanswered_pingreq_makes_the_connection_dead_after_the_keepalive() -> None:
    session = connected(keepalive_s=30)
    assert session.tick(T0 + 29.9) == b""
    assert session.tick(T0 + 30) == PINGREQ_PACKET  # idle for the keepalive
    session.last_out = T0 + 30  # the shell wrote it
    assert session.tick(T0 + 59.9) == b""  # waiting for the PINGRESP: no second PINGREQ
    assert session.tick(T0 + 60) == KEEPALIVE_DEAD
    assert KEEPALIVE_DEAD.reason == "keepalive: the broker did not answer"


def test_an_answered_pingreq_keeps_the_connection() -> None:
    session = connected(keepalive_s=30)
    assert session.tick(T0 + 30) == PINGREQ_PACKET
    session.last_out = T0 + 30
    assert session.receive(bytes((PINGRESP, 0)), T0 + 31) == []
    assert session.tick(T0 + 60) == PINGREQ_PACKET  # idle again (nothing out since T0 + 30): the next ping
    assert session.tick(T0 + 89) == b""


def test_traffic_one_way_only_still_pings() -> None:
    """Keepalive is per direction: a client that only writes still pings when nothing came in."""
    session = connected(keepalive_s=30)
    session.last_out = T0 + 29
    assert session.tick(T0 + 30) == PINGREQ_PACKET


def test_keepalive_zero_never_pings() -> None:
    session = connected(keepalive_s=0)
    assert session.tick(T0 + 1e6) == b""


def test_ids_wrap_at_65535_and_skip_those_in_flight() -> None:
    session = connected()
    assert [published(session.publish(TOPIC, b"", 1) or b"")[0][0] for _ in range(2)] == [1, 2]
    assert session.receive(puback_packet(1), T0) == [1]
    session.mid = 65_534  # far on: the next ids are 65,535, then 1 again
    ids = [published(session.publish(TOPIC, b"", 1) or b"")[0][0] for _ in range(3)]
    assert ids == [65_535, 1, 3]  # 2 is still in flight: skipped
    assert session.new_mid() == 4  # SUBSCRIBE ids come from the same counter


def test_a_packet_cut_anywhere_waits_for_its_rest() -> None:
    packet = publish_packet(TOPIC, b"x" * 200, 1, 7)  # a two-byte remaining length
    session = connected()
    for at in range(len(packet) - 1):
        assert session.receive(packet[at : at + 1], T0) == []  # nothing happens before the last byte
    assert session.receive(packet[-1:], T0) == [RawPublish(b"meters/A/reading", b"x" * 200, 1, 7, False)]


def test_a_chunk_with_the_start_of_the_next_packet() -> None:
    first, second = publish_packet(TOPIC, b"a", 0), publish_packet(TOPIC, b"b", 1, 9, retain=True)
    session = connected()
    assert session.receive(first + second[:5], T0) == [RawPublish(b"meters/A/reading", b"a", 0, 0, False)]
    assert session.receive(second[5:], T0) == [RawPublish(b"meters/A/reading", b"b", 1, 9, True)]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (bytes((PUBLISH | 0x04, 3)) + b"\x00\x01t", "QoS 2"),
        (b"\x40\x03\x00\x01\x00", "malformed PUBACK"),
        (b"\x82\x02\x00\x01", "unexpected packet type 0x82"),  # a SUBSCRIBE: a broker never sends one
        (b"\x30\x05\x00\x09abc", "topic runs past the packet"),
        (b"\x20\x01\x00", "malformed CONNACK"),
    ],
)
def test_a_malformed_packet_is_a_protocol_error_after_the_events_before_it(data: bytes, message: str) -> None:
    session = connected()
    mid = session.mid + 1
    session.publish(TOPIC, b"r", 1)
    events = session.receive(puback_packet(mid) + data, T0)
    assert events[0] == mid  # what came before it happened
    assert len(events) == 2
    assert isinstance(events[1], ProtocolError)
    assert message in str(events[1])


def test_a_remaining_length_over_4_bytes_is_a_protocol_error_for_the_whole_read() -> None:
    """As before the session existed: ``split_packets`` fails the read it is in, so nothing of it is handled (the
    PUBACK before it stays in flight and goes again after the next CONNACK)."""
    session = connected()
    session.publish(TOPIC, b"r", 1)
    events = session.receive(puback_packet(1) + b"\x30\xff\xff\xff\xff\x01", T0)
    assert len(events) == 1
    assert isinstance(events[0], ProtocolError)
    assert "longer than 4 bytes" in str(events[0])
    assert list(session.inflight) == [1]


def test_qos0_is_sent_and_forgotten_qos1_is_held_until_its_puback() -> None:
    session = connected()
    zero = session.publish(TOPIC, b"z", 0)
    assert published(zero or b"") == [(0, 0, False, b"z")]
    assert session.inflight == {}
    assert session.mid == 0  # QoS 0 takes no id
    one = session.publish(TOPIC, b"o", 1, retain=True)
    assert one is not None
    assert published(one) == [(1, 1, False, b"o")]
    assert session.inflight == {1: one}
    assert not session.acknowledged(1)
    assert session.receive(puback_packet(1), T0) == [1]
    assert session.acknowledged(1)
    assert session.receive(puback_packet(1), T0) == []  # a second PUBACK: nothing was in flight


def test_incoming_qos0_and_qos1_messages_are_events_not_acknowledged_by_the_session() -> None:
    session = connected()
    data = publish_packet(TOPIC, b"a", 0) + publish_packet(TOPIC, b"b", 1, 42)
    assert session.receive(data, T0) == [
        RawPublish(b"meters/A/reading", b"a", 0, 0, False),
        RawPublish(b"meters/A/reading", b"b", 1, 42, False),
    ]  # the shell acknowledges 42 once it has taken the message


def test_the_in_flight_bound_refuses_until_a_puback_frees_a_place() -> None:
    session = connected(max_inflight=2)
    assert session.publish(TOPIC, b"1", 1)
    assert session.publish(TOPIC, b"2", 1)
    assert session.publish(TOPIC, b"3", 1) is None
    session.lost()
    assert session.publish(TOPIC, b"3", 1) is None  # disconnected too: the bound holds what waits
    assert session.publish(TOPIC, b"0", 0) == b""  # QoS 0 is never held, so never refused
    assert session.receive(puback_packet(1), T0) == [1]
    assert session.publish(TOPIC, b"3", 1) == b""  # held for the next CONNACK


def test_suback_and_unsuback_and_pingresp() -> None:
    session = connected()
    mid = session.new_mid()
    data = b"\x90\x04" + mid.to_bytes(2, "big") + b"\x01\x80" + b"\xb0\x02\x00\x02" + bytes((PINGRESP, 0))
    assert session.receive(data, T0) == [Suback(mid, b"\x01\x80")]


def test_lost_forgets_a_partial_packet() -> None:
    session = connected()
    session.receive(publish_packet(TOPIC, b"abc", 0)[:4], T0)
    session.lost()
    session.connect(T0 + 1, "meter-A")
    assert session.receive(CONNACK_OK, T0 + 2) == [Connack(0, False, b"")]  # not glued to the old bytes
