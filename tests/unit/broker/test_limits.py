"""broker.limits: the packet size bound (derived from the wire contract) and the framing tracker amqtt's reader uses."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.limits import MAX_PACKET_BYTES, PacketSizeGuard, PacketTooLarge
from config.wire import MAX_PAYLOAD_BYTES


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _packet(body_bytes: int) -> bytes:
    return b"\x32" + _remaining_length(body_bytes) + bytes(body_bytes)


def test_the_limit_is_the_payload_bound_plus_headroom() -> None:
    assert MAX_PAYLOAD_BYTES < MAX_PACKET_BYTES <= MAX_PAYLOAD_BYTES + 8 * 1024


def test_packets_up_to_the_limit_pass_in_any_chunking() -> None:
    body = MAX_PACKET_BYTES - 1 - len(_remaining_length(MAX_PACKET_BYTES))
    stream = _packet(10) + _packet(body) + _packet(0) + _packet(200)
    assert len(_packet(body)) == MAX_PACKET_BYTES
    for size in (1, 2, 7, 4096, len(stream)):
        guard = PacketSizeGuard()
        for start in range(0, len(stream), size):
            guard.feed(stream[start : start + size])
        assert guard.refused is None


def test_a_larger_packet_is_refused_at_its_header_and_ever_after() -> None:
    guard = PacketSizeGuard()
    guard.feed(_packet(5))
    big = _packet(8 * 1024 * 1024)
    header = big[:5]  # type byte and 4 length bytes: the body is never needed to refuse
    guard.feed(header[:1])
    with pytest.raises(PacketTooLarge, match="over the limit"):
        guard.feed(header[1:])
    with pytest.raises(PacketTooLarge):
        guard.feed(b"\x00")
    one_over = PacketSizeGuard()
    body = MAX_PACKET_BYTES - 1 - len(_remaining_length(MAX_PACKET_BYTES))
    with pytest.raises(PacketTooLarge):
        one_over.feed(_packet(body + 1)[:5])


def test_a_malformed_remaining_length_is_refused() -> None:
    with pytest.raises(PacketTooLarge, match="more than 4 bytes"):
        PacketSizeGuard(max_bytes=10**9).feed(b"\x30\xff\xff\xff\xff\x01")
    with pytest.raises(ValueError, match="max_bytes"):
        PacketSizeGuard(max_bytes=1)


@given(st.lists(st.integers(0, 3000), max_size=8), st.integers(1, 50))
def test_framing_is_followed_exactly(bodies: list[int], chunk: int) -> None:
    """Packets just under a small limit pass, whatever the chunking; the same stream plus one too large is refused."""
    limit = 3000 + 1 + 2
    stream = b"".join(_packet(n) for n in bodies)
    guard = PacketSizeGuard(limit)
    for start in range(0, len(stream), chunk):
        guard.feed(stream[start : start + chunk])
    assert guard.refused is None
    with pytest.raises(PacketTooLarge):
        guard.feed(_packet(limit))
