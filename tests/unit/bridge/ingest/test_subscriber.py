"""bridge.ingest.subscriber: PUBLISH packets a broker would send go straight into its chunk handler, and what it writes
is decoded from its bytes (no broker, start() is never called)."""

from __future__ import annotations

import logging

import pytest

from bridge.ingest.history import History
from bridge.ingest.link import MAX_QUEUED
from bridge.ingest.messages import Ingest
from bridge.ingest.subscriber import Subscriber
from config.mqtt.packet import PINGRESP, PUBACK, Packet, ProtocolError, parse_publish, puback_packets, split_packets
from config.settings import DEFAULT_BRIDGE_ID, BrokerAddress
from config.topics import BATCH_SUBSCRIPTION, READING_SUBSCRIPTION, STATUS_SUBSCRIPTION, probe_topic
from config.wire import Reading, encode_reading
from tests.support.subscriber import Wire, Written, deliver, publish_bytes

T0 = 1_704_067_200
METERS = [(READING_SUBSCRIPTION, 1), (BATCH_SUBSCRIPTION, 1), (STATUS_SUBSCRIPTION, 1)]
PROBE = probe_topic(DEFAULT_BRIDGE_ID)


@pytest.fixture
def subscriber() -> Subscriber:
    return Subscriber(BrokerAddress("127.0.0.1", 1883, "user", "secret"), Ingest(History(3600)))


def reading(ts: int) -> bytes:
    return encode_reading(Reading("A", ts - T0, ts, 1500.0, None, 2000.0, 0.0, 0.0, 0.0))


def test_valid_messages_reach_history(subscriber: Subscriber) -> None:
    deliver(subscriber, b"meters/A/reading", reading(T0))
    deliver(subscriber, b"meters/A/reading", reading(T0 + 1))
    deliver(subscriber, b"meters/A/status", b"online")
    history = subscriber.ingest.history
    assert history.watermark("A") == T0 + 2
    assert history.summary("A").status == "online"
    assert subscriber.ingest.counters() == {"accepted": 2, "duplicates": 0, "rejected": {}}


def test_a_chunk_is_acknowledged_in_one_write_after_every_message_was_taken(subscriber: Subscriber) -> None:
    """Every QoS 1 message of a chunk is handed to ingest first, then all their PUBACKs go out together, in order;
    QoS 0 messages need none."""
    taken: list[int] = []
    handle = subscriber.ingest.handle

    def counting(topic: str, payload: bytes) -> bool:
        taken.append(len(taken))
        return handle(topic, payload)

    subscriber.ingest.handle = counting  # type: ignore[method-assign]
    chunk = b"".join(publish_bytes(b"meters/A/reading", reading(T0 + i), 1, mid=100 + i) for i in range(5))
    chunk += publish_bytes(b"meters/A/status", b"online", 0)
    chunk += bytes((PINGRESP, 0))
    buffer = bytearray(chunk + publish_bytes(b"meters/A/reading", reading(T0 + 9), 1, mid=7)[:10])  # a part of one
    acks = subscriber._handle(split_packets(buffer))
    assert len(taken) == 6  # all of the chunk's messages were handed over before the acknowledgement was made
    assert acks == puback_packets([100, 101, 102, 103, 104])
    assert len(buffer) == 10  # the partial packet waits for the rest
    assert subscriber.ingest.counters()["accepted"] == 5


def test_a_packet_a_client_never_receives_is_a_protocol_error(subscriber: Subscriber) -> None:
    with pytest.raises(ProtocolError):
        subscriber._handle([Packet(0x82, b"\x00\x01")])  # a SUBSCRIBE


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        (b"meters/\xff\xfe/reading", b"{}", "bad_topic"),  # not UTF-8: a bad topic, not a protocol error
        (b"meters/A/reading", b"\x00\x01garbage\xff", "bad_utf8"),
        (b"meters/A/reading", b"garbage", "bad_json"),
        (b"meters/A/reading", b"", "bad_json"),
        (b"#", b"", "bad_topic"),
        (b"meters/A/status", b"\xff", "bad_status"),
    ],
)
def test_garbage_is_counted(subscriber: Subscriber, topic: bytes, payload: bytes, reason: str) -> None:
    assert deliver(subscriber, topic, payload, qos=1, mid=3) == puback_packets([3])  # taken, so acknowledged
    assert subscriber.ingest.counters()["rejected"] == {reason: 1}


def test_history_failure_is_internal(subscriber: Subscriber, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(reading: Reading) -> str:
        raise MemoryError("no room")

    monkeypatch.setattr(subscriber.ingest.history, "put", broken)
    deliver(subscriber, b"meters/A/reading", reading(T0))
    assert subscriber.ingest.counters()["rejected"] == {"internal": 1}


def test_nothing_escapes_even_if_ingest_raises(
    subscriber: Subscriber, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(topic: str, payload: bytes) -> bool:
        raise RuntimeError("a bug")

    monkeypatch.setattr(subscriber.ingest, "handle", broken)
    with caplog.at_level(logging.ERROR, logger="bridge.ingest.subscriber"):
        deliver(subscriber, b"meters/A/reading", reading(T0))  # must not raise
    assert "error handling a message" in caplog.text


def test_connect_subscribes_and_disconnect_clears(subscriber: Subscriber) -> None:
    wire = Wire(subscriber)
    assert subscriber._on_connack(0, False)
    assert subscriber.connected
    written = wire.packets()
    assert written[0] == Written("subscribe", [*METERS, (PROBE, 1)], mid=written[0].mid)  # its own probe too
    assert [(w.kind, w.topics) for w in written[1:]] == [("publish", [(PROBE, 1)])]  # a probe at once
    subscriber._lost("connection closed")
    assert not subscriber.connected


def test_refused_connect_does_not_subscribe(subscriber: Subscriber, caplog: pytest.LogCaptureFixture) -> None:
    wire = Wire(subscriber)
    with caplog.at_level(logging.WARNING, logger="bridge.ingest.subscriber"):
        assert not subscriber._on_connack(5, False)
    assert not subscriber.connected
    assert wire.packets() == []
    assert "refused the bridge: not authorised" in caplog.text


def test_connect_logs_whether_the_session_was_kept(subscriber: Subscriber, caplog: pytest.LogCaptureFixture) -> None:
    Wire(subscriber)
    with caplog.at_level(logging.INFO, logger="bridge.ingest.subscriber"):
        subscriber._on_connack(0, True)
        subscriber._lost("closed")
        subscriber._on_connack(0, False)
    assert "(its session kept)" in caplog.text
    assert "(a new session)" in caplog.text


def test_routed_topic_goes_to_its_handler_not_to_ingest(subscriber: Subscriber) -> None:
    received: list[bytes] = []
    subscriber.add_route("homeassistant/status", received.append)
    deliver(subscriber, b"homeassistant/status", b"online")
    deliver(subscriber, b"homeassistant/status", b"offline")
    assert received == [b"online", b"offline"]
    assert subscriber.ingest.counters() == {"accepted": 0, "duplicates": 0, "rejected": {}}


def test_a_failing_route_handler_does_not_escape(subscriber: Subscriber) -> None:
    def broken(payload: bytes) -> None:
        raise RuntimeError("a bug")

    subscriber.add_route("homeassistant/status", broken)
    deliver(subscriber, b"homeassistant/status", b"online")  # must not raise
    assert subscriber.ingest.counters()["rejected"] == {}


def test_connect_subscribes_routes_too_and_numbers_connections(subscriber: Subscriber) -> None:
    subscriber.add_route("homeassistant/status", lambda payload: None)
    wire = Wire(subscriber)
    assert subscriber.connection() is None
    subscriber._on_connack(0, False)
    assert wire.packets()[0].topics == [*METERS, (PROBE, 1), ("homeassistant/status", 1)]
    assert subscriber.connection() == 1
    subscriber._lost("closed")
    assert subscriber.connection() is None
    subscriber._on_connack(5, False)
    assert subscriber.connection() is None
    subscriber._on_connack(0, False)
    assert subscriber.connection() == 2


def test_a_route_added_while_connected_subscribes_at_once(subscriber: Subscriber) -> None:
    wire = Wire(subscriber)
    subscriber.add_route("a/b", lambda payload: None)
    assert wire.packets() == []  # not connected: the CONNACK will
    subscriber.connected = True
    subscriber.add_route("c/d", lambda payload: None, qos=0)
    assert [(w.kind, w.topics) for w in wire.packets()] == [("subscribe", [("c/d", 0)])]


def test_publish_says_whether_it_was_sent_or_held(subscriber: Subscriber) -> None:
    """QoS 1 is held until its PUBACK (sent again after a reconnect); QoS 0 without a connection is not sent."""
    wire = Wire(subscriber)
    assert subscriber.publish("meters/A/agg/60s", b"{}", 1, True)  # disconnected: held
    assert not subscriber.publish("meters/A/agg/60s", b"{}", 0, True)  # disconnected: gone
    assert wire.packets() == []
    subscriber._on_connack(0, True)
    held = [w for w in wire.packets() if w.kind == "publish" and w.topics[0][0] == "meters/A/agg/60s"]
    assert [(w.topics, w.payload, w.retain) for w in held] == [([("meters/A/agg/60s", 1)], b"{}", True)]
    assert subscriber.publish("meters/A/agg/60s", b"[]", 0, False)
    assert wire.packets()[0].topics == [("meters/A/agg/60s", 0)]
    wire.accept = False  # the socket refuses: QoS 1 is still held, QoS 0 is not sent
    assert subscriber.publish("x", b"", 1, False)
    assert not subscriber.publish("x", b"", 0, False)


def test_a_puback_releases_a_held_message(subscriber: Subscriber) -> None:
    wire = Wire(subscriber)
    subscriber._on_connack(0, False)
    wire.packets()
    subscriber.publish("meters/A/agg/60s", b"{}", 1, True)
    mid = wire.packets()[0].mid
    subscriber._handle(split_packets(bytearray(b"\x40\x02" + mid.to_bytes(2, "big"))))
    subscriber._lost("closed")
    subscriber._on_connack(0, True)
    assert all(w.topics[0][0] != "meters/A/agg/60s" for w in wire.packets())  # acknowledged: not sent again


def test_publish_refuses_beyond_the_queue_bound(subscriber: Subscriber) -> None:
    Wire(subscriber)
    for _ in range(MAX_QUEUED):
        assert subscriber.publish("x", b"", 1, False)
    assert not subscriber.publish("x", b"", 1, False)


def test_failover_moves_to_the_next_broker_before_the_next_attempt() -> None:
    """Lost, refused or unreachable: the next attempt goes to the next node of the list, round robin (each with its
    own login); a good connection stays where it is."""
    from config.settings import parse_broker_urls

    broker = parse_broker_urls("mqtt://u1:p1@127.0.0.1:1001,mqtt://u2:p2@127.0.0.1:1002")
    subscriber = Subscriber(broker, Ingest(History(3600)))
    Wire(subscriber)
    assert subscriber.node_url() == "mqtt://u1@127.0.0.1:1001"
    assert subscriber._choose_node().port == 1001  # the first attempt: the first node
    subscriber._connect_failed(ConnectionRefusedError())  # TCP refused
    node = subscriber._choose_node()
    assert (node.port, node.login("bridge"), subscriber.node_url()) == (1002, ("u2", "p2"), "mqtt://u2@127.0.0.1:1002")
    subscriber._on_connack(5, False)  # refused
    node = subscriber._choose_node()
    assert (node.port, node.login("bridge")) == (1001, ("u1", "p1"))  # round robin
    subscriber._on_connack(0, False)
    assert subscriber._choose_node().port == 1001  # an attempt after a good connection that was not lost: stays
    subscriber._lost("connection closed")
    assert (subscriber._choose_node().port, subscriber.node_url()) == (1002, "mqtt://u2@127.0.0.1:1002")


def test_one_broker_never_moves(subscriber: Subscriber) -> None:
    subscriber._connect_failed(ConnectionRefusedError())
    assert (subscriber._choose_node().port, subscriber.node_url()) == (1883, "mqtt://user@127.0.0.1:1883")


# -- the bridge's own availability ------------------------------------------------------------------------------

STATUS = "bridges/fleet/status"


@pytest.fixture
def announcing() -> Subscriber:
    """A subscriber with a status topic of its own (the bridge's availability)."""
    return Subscriber(BrokerAddress("127.0.0.1", 1883, "user", "secret"), Ingest(History(3600)), status_topic=STATUS)


def _status_messages(written: list[Written]) -> list[tuple[bytes, int, bool]]:
    return [(w.payload, w.topics[0][1], w.retain) for w in written if w.kind == "publish" and w.topics[0][0] == STATUS]


def test_each_connack_publishes_online_retained(announcing: Subscriber) -> None:
    wire = Wire(announcing)
    announcing._on_connack(0, False)
    assert _status_messages(wire.packets()) == [(b"online", 1, True)]
    announcing._lost("closed")
    announcing._on_connack(0, True)
    assert (b"online", 1, True) in _status_messages(wire.packets())  # again (the first is resent too: no PUBACK)


def test_no_status_topic_no_status(subscriber: Subscriber) -> None:
    wire = Wire(subscriber)
    subscriber._on_connack(0, False)
    assert all(w.topics[0][0] != STATUS for w in wire.packets() if w.kind == "publish")


def test_stop_publishes_offline_retained_and_takes_its_puback(announcing: Subscriber) -> None:
    """A clean DISCONNECT suppresses the Will: ``stop`` says ``offline`` itself, acknowledged before it goes on."""
    wire = Wire(announcing)
    announcing._on_connack(0, False)
    wire.packets()
    order: list[str] = []

    def broker(data: bytes) -> bool:  # acknowledges each QoS 1 PUBLISH as a broker would, on the spot
        for packet in split_packets(bytearray(data)):
            order.append(f"publish {parse_publish(packet).payload.decode()}")
            announcing._handle([Packet(PUBACK, parse_publish(packet).mid.to_bytes(2, "big"))])
            order.append("puback")
        return True

    announcing._send = broker  # type: ignore[method-assign]
    announcing.stop(timeout=1.0)
    assert order == ["publish offline", "puback"]
    assert all(not packet.endswith(b"offline") for packet in announcing._mqtt.inflight.values())  # acknowledged


def test_stop_does_not_wait_long_for_a_puback_that_never_comes(
    announcing: Subscriber, caplog: pytest.LogCaptureFixture
) -> None:
    wire = Wire(announcing)
    announcing._on_connack(0, False)
    wire.packets()
    with caplog.at_level(logging.WARNING, logger="bridge.ingest.subscriber"):
        announcing.stop(timeout=0.2)  # waits up to 0.1 s for the PUBACK
    assert _status_messages(wire.packets()) == [(b"offline", 1, True)]
    assert "did not acknowledge the bridge's offline" in caplog.text
