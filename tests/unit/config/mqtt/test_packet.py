"""config.mqtt.packet: the MQTT 3.1.1 packets a meter sends and receives, byte for byte (OASIS MQTT 3.1.1, section 3).

The expected bytes are written out by hand from the standard's tables (not produced by the code under test), and the
parser is fed packets split at every possible byte boundary."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from config.mqtt.packet import (
    CONNACK,
    PUBACK,
    PUBLISH,
    Message,
    Packet,
    ProtocolError,
    RawPublish,
    Will,
    as_duplicate,
    connack_code,
    connack_session_present,
    connect_packet,
    packet_id,
    parse_publish,
    parse_publish_raw,
    puback_packet,
    puback_packets,
    publish_packet,
    remaining_length,
    split_packets,
    string,
    suback_codes,
    subscribe_many_packet,
    subscribe_packet,
    unsubscribe_packet,
)


@pytest.mark.parametrize(
    ("n", "encoded"),
    [
        (0, b"\x00"),
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (16_383, b"\xff\x7f"),
        (16_384, b"\x80\x80\x01"),
        (2_097_151, b"\xff\xff\x7f"),
        (2_097_152, b"\x80\x80\x80\x01"),
        (268_435_455, b"\xff\xff\xff\x7f"),
    ],
)
def test_remaining_length_matches_the_standards_table(n: int, encoded: bytes) -> None:
    assert remaining_length(n) == encoded


def test_remaining_length_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="out of range"):
        remaining_length(268_435_456)
    with pytest.raises(ValueError, match="out of range"):
        remaining_length(-1)


def test_connect_with_will_user_and_password() -> None:
    packet = connect_packet(
        "meter-A",
        30,
        will=Will("meters/A/status", b"offline", qos=1, retain=True),
        username="A",
        password="pw",
    )
    body = (
        b"\x00\x04MQTT\x04"  # protocol name and level 4 (3.1.1)
        + bytes([0x80 | 0x40 | 0x20 | 0x08 | 0x04 | 0x02])  # user, password, will retain, will QoS 1, will, clean
        + b"\x00\x1e"  # keepalive 30 s
        + b"\x00\x07meter-A"
        + b"\x00\x0fmeters/A/status"
        + b"\x00\x07offline"
        + b"\x00\x01A"
        + b"\x00\x02pw"
    )
    assert packet == b"\x10" + bytes([len(body)]) + body


def test_connect_without_will_or_login_is_clean_session_only() -> None:
    assert connect_packet("c", 0) == b"\x10\x0d\x00\x04MQTT\x04\x02\x00\x00\x00\x01c"


def test_connect_refuses_a_password_without_user_and_bad_keepalive() -> None:
    with pytest.raises(ValueError, match="user name"):
        connect_packet("c", 30, password="pw")
    with pytest.raises(ValueError, match="keepalive"):
        connect_packet("c", 70_000)


def test_publish_qos1_and_qos0_bytes() -> None:
    assert publish_packet(string("a/b"), b"xy", 1, 10) == b"\x32\x09\x00\x03a/b\x00\x0axy"
    assert publish_packet(string("a/b"), b"xy", 0, retain=True) == b"\x31\x07\x00\x03a/bxy"
    assert as_duplicate(publish_packet(string("t"), b"", 1, 1))[0] == 0x3A  # DUP | QoS 1
    with pytest.raises(ValueError, match="QoS 2"):
        publish_packet(string("t"), b"", 2, 1)


def test_puback_and_subscribe_bytes() -> None:
    assert puback_packet(0x1234) == b"\x40\x02\x12\x34"
    assert subscribe_packet(5, "meters/A/cmd/replay", 1) == b"\x82\x18\x00\x05\x00\x13meters/A/cmd/replay\x01"


def test_string_longer_than_65535_bytes_is_refused() -> None:
    with pytest.raises(ValueError, match="longer than"):
        string(b"x" * 65_536)


def test_split_takes_whole_packets_and_leaves_the_rest() -> None:
    big = publish_packet(string("meters/A/readings"), b"p" * 300, 1, 7)  # two length bytes
    stream = bytearray(b"\x20\x02\x00\x00" + b"\x40\x02\x00\x07" + big + b"\xd0\x00" + b"\x40\x02\x00")
    packets = split_packets(stream)
    assert [p.first for p in packets] == [CONNACK, PUBACK, big[0], 0xD0]
    assert stream == bytearray(b"\x40\x02\x00")  # the incomplete PUBACK waits for its last byte
    assert connack_code(packets[0]) == 0
    assert packet_id(packets[1]) == 7
    assert parse_publish(packets[2]) == Message("meters/A/readings", b"p" * 300, 1, 7, False)
    stream += b"\x08"
    assert split_packets(stream) == [Packet(PUBACK, b"\x00\x08")]
    assert stream == bytearray()


@given(st.lists(st.binary(max_size=400), min_size=1, max_size=8), st.data())
def test_split_at_any_boundary_gives_the_same_packets(payloads: list[bytes], data: st.DataObject) -> None:
    packets = [publish_packet(string("t/x"), p, 1, i + 1) for i, p in enumerate(payloads)]
    wire = b"".join(packets)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=6)))
    buffer, got = bytearray(), []
    for start, end in zip([0, *cuts], [*cuts, len(wire)], strict=True):
        buffer += wire[start:end]
        got.extend(split_packets(buffer))
    assert [parse_publish(p).payload for p in got] == payloads
    assert [parse_publish(p).mid for p in got] == list(range(1, len(payloads) + 1))
    assert buffer == bytearray()


def test_malformed_input_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="4 bytes"):
        split_packets(bytearray(b"\x30\xff\xff\xff\xff\x01"))
    with pytest.raises(ProtocolError, match="CONNACK"):
        connack_code(Packet(CONNACK, b"\x00"))
    with pytest.raises(ProtocolError, match="QoS 2"):
        parse_publish(Packet(PUBLISH | 0x04, b"\x00\x01t\x00\x01"))
    with pytest.raises(ProtocolError, match="past the packet"):
        parse_publish(Packet(PUBLISH | 0x02, b"\x00\x09ab"))
    with pytest.raises(ProtocolError, match="UTF-8"):
        parse_publish(Packet(PUBLISH, b"\x00\x01\xff"))
    with pytest.raises(ProtocolError, match="identifier"):
        packet_id(Packet(PUBACK, b"\x00"))


def test_subscribe_and_unsubscribe_several_filters_bytes() -> None:
    """OASIS MQTT 3.1.1 3.8 and 3.10: packet id, then each filter (length-prefixed) with its QoS byte (SUBSCRIBE)."""
    assert subscribe_many_packet(2, [("a/+", 1), ("b", 0)]) == b"\x82\x0c\x00\x02\x00\x03a/+\x01\x00\x01b\x00"
    assert unsubscribe_packet(3, ["a/+", "b"]) == b"\xa2\x0a\x00\x03\x00\x03a/+\x00\x01b"
    with pytest.raises(ValueError, match="at least one"):
        subscribe_many_packet(1, [])
    with pytest.raises(ValueError, match="at least one"):
        unsubscribe_packet(1, [])


def test_acknowledgements_of_a_chunk_are_back_to_back_pubacks() -> None:
    assert puback_packets([1, 0xABCD]) == b"\x40\x02\x00\x01\x40\x02\xab\xcd"
    assert puback_packets([1, 0xABCD]) == puback_packet(1) + puback_packet(0xABCD)
    assert puback_packets([]) == b""


def test_connack_session_present_and_suback_codes() -> None:
    assert connack_session_present(Packet(CONNACK, b"\x01\x00"))
    assert not connack_session_present(Packet(CONNACK, b"\x00\x00"))
    assert suback_codes(Packet(0x90, b"\x00\x05\x01\x80\x00")) == b"\x01\x80\x00"
    with pytest.raises(ProtocolError, match="return code"):
        suback_codes(Packet(0x90, b"\x00\x05"))


def test_raw_publish_keeps_the_topic_bytes() -> None:
    """A topic that is not UTF-8 is the receiver's to judge: the raw parse gives its bytes."""
    assert parse_publish_raw(Packet(PUBLISH | 0x02, b"\x00\x02\xff\xfe\x00\x09xy")) == RawPublish(
        b"\xff\xfe", b"xy", 1, 9
    )
    assert parse_publish_raw(Packet(PUBLISH, b"\x00\x01tpayload")) == RawPublish(b"t", b"payload", 0, 0)
    with pytest.raises(ProtocolError, match="past the packet"):
        parse_publish_raw(Packet(PUBLISH, b"\x00\x09ab"))
