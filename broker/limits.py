"""The brokers' maximum MQTT packet size, and a framing tracker that enforces it on amqtt (pure: no I/O).

``MAX_PACKET_BYTES`` is the wire contract's payload bound (``config.wire.MAX_PAYLOAD_BYTES``, 64 KiB) plus 4 KiB of
headroom for the fixed header, topic, packet id and the largest SUBSCRIBE the bridge sends (bridge.ingest.subscriber's
``FILTERS_PER_SUBSCRIBE`` filters). Mosquitto takes it as ``max_packet_size`` (the whole packet: fixed header and
remaining length); amqtt 0.12 has no such option, so ``broker.embedded`` feeds every byte a client sends through a
``PacketSizeGuard``, which refuses a packet as soon as its fixed header announces more, before its body is read.
"""

from __future__ import annotations

from typing import Final

from config.wire import MAX_PAYLOAD_BYTES

PACKET_HEADROOM_BYTES: Final = 4 * 1024
MAX_PACKET_BYTES: Final = MAX_PAYLOAD_BYTES + PACKET_HEADROOM_BYTES
_MAX_LENGTH_BYTES: Final = 4  # MQTT 3.1.1: the remaining length takes 1 to 4 bytes


class PacketTooLarge(Exception):
    """A client announced a packet over the limit (or a malformed remaining length)."""


class PacketSizeGuard:
    """Follows the MQTT framing of one client's byte stream; ``feed`` raises ``PacketTooLarge`` once a fixed header
    announces a packet of more than ``max_bytes`` (fixed header included), and on every call after that."""

    def __init__(self, max_bytes: int = MAX_PACKET_BYTES) -> None:
        if max_bytes < 2:
            raise ValueError(f"max_bytes must be at least 2, got {max_bytes}")
        self.max_bytes = max_bytes
        self._body_left = 0  # bytes of the current packet's body still to come
        self._in_header = False  # inside a fixed header (its first byte seen)
        self._length = 0
        self._length_bytes = 0
        self.refused: str | None = None

    def feed(self, data: bytes) -> None:
        """Account for ``data``, the next bytes read from the client."""
        if self.refused is not None:
            raise PacketTooLarge(self.refused)
        i, n = 0, len(data)
        while i < n:
            if self._body_left:
                step = min(self._body_left, n - i)
                self._body_left -= step
                i += step
            elif not self._in_header:
                self._in_header, self._length, self._length_bytes = True, 0, 0
                i += 1  # packet type and flags
            else:
                byte = data[i]
                i += 1
                self._length += (byte & 0x7F) << (7 * self._length_bytes)
                self._length_bytes += 1
                if byte & 0x80 and self._length_bytes >= _MAX_LENGTH_BYTES:
                    self._refuse("a remaining length of more than 4 bytes")
                if not byte & 0x80:
                    total = 1 + self._length_bytes + self._length
                    if total > self.max_bytes:
                        self._refuse(f"a packet of {total} bytes, over the limit of {self.max_bytes}")
                    self._in_header, self._body_left = False, self._length

    def _refuse(self, why: str) -> None:
        self.refused = why
        raise PacketTooLarge(why)
