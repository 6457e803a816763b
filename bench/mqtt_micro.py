"""Micro-timing of the MQTT hot paths in process (no broker, no syscalls): what the meters' client and the bridge's
subscriber spend in Python per message, to compare the session rules' cost before and after a change.

- ``publish``: ``MqttConnection.publish`` of a reading at QoS 1 on a connected meter, then ``read`` of its PUBACK
  (the meters' loop does both per reading), over a stand-in socket that takes every byte and hands back the PUBACK.
- ``ingest``: ``Subscriber._handle(split_packets(chunk))``, a chunk of 250 QoS 1 readings (about one 64 KiB read)
  whose handler does nothing, so only the subscriber's own work is timed; per message.
- ``read``: the same chunk as the network thread takes it after a ``recv`` (``_take_chunk``: split, handle, the one
  PUBACK write, here a stand-in); per message. It runs against the code before the session existed too.

``python -m bench.mqtt_micro`` prints microseconds per operation, best of ``--repeat`` runs (``timeit`` style).
"""

from __future__ import annotations

import argparse
import inspect
import timeit
from typing import Any

from config.mqtt.connection import MqttConnection
from config.mqtt.packet import puback_packet, publish_packet, split_packets, string

READING = b'{"meter":"A","seq":1,"ts":1704067200,"ac_w":1500.0,"geyser_w":0.0,"overall_w":2000.0}'
CHUNK_MESSAGES = 250


class _Socket:
    """Takes whatever is sent; ``recv`` returns what ``answer`` holds (the broker's side, scripted)."""

    def __init__(self) -> None:
        self.answer = b""

    def send(self, data: bytes | bytearray) -> int:
        return len(data)

    def recv(self, size: int) -> bytes:
        data, self.answer = self.answer, b""
        return data


def publish_cycle_us(number: int, repeat: int) -> float:
    """Microseconds for one publish and the read of its PUBACK."""
    conn = MqttConnection("meter-A")
    sock = _Socket()
    conn._sock = sock  # type: ignore[assignment]
    sock.answer = b"\x20\x02\x00\x00"  # CONNACK accepted, through the normal read path
    conn.read()
    assert conn.connected
    acked: list[int] = []
    conn.on_publish = acked.append
    topic = "meters/A/reading"

    def cycle() -> None:
        mid = conn.publish(topic, READING, 1)
        assert mid is not None
        sock.answer = puback_packet(mid)
        conn.read()

    best = min(timeit.repeat(cycle, number=number, repeat=repeat))
    assert conn.queued == 0
    assert len(acked) == number * repeat
    return best / number * 1e6


def ingest_per_message_us(number: int, repeat: int) -> float:
    """Microseconds per message of a chunk of QoS 1 readings through the subscriber's chunk handler."""
    from bridge.ingest.subscriber import Subscriber
    from config.settings import BrokerAddress

    class _Ingest:
        def handle(self, topic: str, payload: bytes) -> bool:
            return True

    subscriber = Subscriber(BrokerAddress("127.0.0.1", 1883, None, None), _Ingest())  # type: ignore[arg-type]
    topic = string("meters/A/reading")
    chunk = b"".join(publish_packet(topic, READING, 1, mid) for mid in range(1, CHUNK_MESSAGES + 1))

    def once() -> None:
        subscriber._handle(split_packets(bytearray(chunk)))

    best = min(timeit.repeat(once, number=number, repeat=repeat))
    return best / number / CHUNK_MESSAGES * 1e6


def read_per_message_us(number: int, repeat: int) -> float:
    """Microseconds per message of a chunk of QoS 1 readings as the network thread takes it from ``recv``."""
    from bridge.ingest.subscriber import Subscriber
    from config.settings import BrokerAddress

    class _Ingest:
        def handle(self, topic: str, payload: bytes) -> bool:
            return True

    subscriber = Subscriber(BrokerAddress("127.0.0.1", 1883, None, None), _Ingest())  # type: ignore[arg-type]
    subscriber._send = lambda data: True  # type: ignore[method-assign]
    topic = string("meters/A/reading")
    chunk = b"".join(publish_packet(topic, READING, 1, mid) for mid in range(1, CHUNK_MESSAGES + 1))
    take: Any = subscriber._take_chunk
    if inspect.signature(take).parameters:  # the chunk as an argument (the session keeps partial packets)

        def once() -> None:
            assert take(chunk)

    else:  # before config.mqtt.session: the subscriber's own buffer

        def once() -> None:
            subscriber._in += chunk
            assert take()

    best = min(timeit.repeat(once, number=number, repeat=repeat))
    return best / number / CHUNK_MESSAGES * 1e6


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(f"publish+puback: {publish_cycle_us(20_000, args.repeat):.3f} us per reading")
    print(f"ingest chunk:   {ingest_per_message_us(200, args.repeat):.3f} us per message")
    print(f"read chunk:     {read_per_message_us(200, args.repeat):.3f} us per message")


if __name__ == "__main__":
    main()
