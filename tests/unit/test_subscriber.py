"""bridge.subscriber: built paho messages go straight into the callback (no broker, start() is never called)."""

from __future__ import annotations

import pytest
from paho.mqtt.client import MQTTMessage
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from bridge.history import History
from bridge.ingest import Ingest
from bridge.subscriber import Subscriber
from config.settings import DEFAULT_BRIDGE_ID, BrokerAddress
from config.wire import (
    BATCH_SUBSCRIPTION,
    READING_SUBSCRIPTION,
    STATUS_SUBSCRIPTION,
    Reading,
    encode_reading,
    probe_topic,
)

T0 = 1_704_067_200


@pytest.fixture
def subscriber() -> Subscriber:
    return Subscriber(BrokerAddress("127.0.0.1", 1883, "user", "secret"), Ingest(History(3600)))


def deliver(subscriber: Subscriber, topic: bytes, payload: bytes) -> None:
    message = MQTTMessage(topic=topic)
    message.payload = payload
    subscriber._on_message(subscriber.client, None, message)


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


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        (b"meters/\xff\xfe/reading", b"{}", "bad_topic"),  # not UTF-8: paho's .topic raises
        (b"meters/A/reading", b"\x00\x01garbage\xff", "bad_utf8"),
        (b"meters/A/reading", b"garbage", "bad_json"),
        (b"meters/A/reading", b"", "bad_json"),
        (b"#", b"", "bad_topic"),
        (b"meters/A/status", b"\xff", "bad_status"),
    ],
)
def test_garbage_is_counted(subscriber: Subscriber, topic: bytes, payload: bytes, reason: str) -> None:
    deliver(subscriber, topic, payload)
    assert subscriber.ingest.counters()["rejected"] == {reason: 1}


def test_history_failure_is_internal(subscriber: Subscriber, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(reading: Reading) -> str:
        raise MemoryError("no room")

    monkeypatch.setattr(subscriber.ingest.history, "put", broken)
    deliver(subscriber, b"meters/A/reading", reading(T0))
    assert subscriber.ingest.counters()["rejected"] == {"internal": 1}


def test_nothing_escapes_even_if_ingest_raises(subscriber: Subscriber, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(topic: str, payload: bytes) -> bool:
        raise RuntimeError("a bug")

    monkeypatch.setattr(subscriber.ingest, "handle", broken)
    deliver(subscriber, b"meters/A/reading", reading(T0))  # must not raise


class FakeClient:
    def __init__(self) -> None:
        self.subscriptions: list[object] = []

    def subscribe(self, topics: object) -> None:
        self.subscriptions.append(topics)


def test_connect_subscribes_and_disconnect_clears(subscriber: Subscriber) -> None:
    fake = FakeClient()
    subscriber._on_connect(fake, None, None, ReasonCode(PacketTypes.CONNACK, "Success"), None)  # type: ignore[arg-type]
    assert subscriber.connected
    meters = [(READING_SUBSCRIPTION, 1), (BATCH_SUBSCRIPTION, 1), (STATUS_SUBSCRIPTION, 1)]
    assert fake.subscriptions == [[*meters, (probe_topic(DEFAULT_BRIDGE_ID), 1)]]  # its own probe too
    subscriber._on_disconnect(fake, None, None, ReasonCode(PacketTypes.DISCONNECT, "Normal disconnection"), None)  # type: ignore[arg-type]
    assert not subscriber.connected


def test_refused_connect_does_not_subscribe(subscriber: Subscriber) -> None:
    fake = FakeClient()
    refused = ReasonCode(PacketTypes.CONNACK, "Not authorized")
    subscriber._on_connect(fake, None, None, refused, None)  # type: ignore[arg-type]
    assert not subscriber.connected
    assert fake.subscriptions == []


class RecordingClient:
    """Stands in for paho where a route subscribes at once or a message is published."""

    def __init__(self, rc: int = 0) -> None:
        self.subscriptions: list[tuple[object, ...]] = []
        self.published: list[tuple[str, bytes, int, bool]] = []
        self.rc = rc

    def subscribe(self, *args: object) -> None:
        self.subscriptions.append(args)

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> object:
        self.published.append((topic, payload, qos, retain))
        return type("Info", (), {"rc": self.rc})()


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
    fake = FakeClient()
    success = ReasonCode(PacketTypes.CONNACK, "Success")
    assert subscriber.connection() is None
    subscriber._on_connect(fake, None, None, success, None)  # type: ignore[arg-type]
    meters = [(READING_SUBSCRIPTION, 1), (BATCH_SUBSCRIPTION, 1), (STATUS_SUBSCRIPTION, 1)]
    assert fake.subscriptions == [[*meters, (probe_topic(DEFAULT_BRIDGE_ID), 1), ("homeassistant/status", 1)]]
    assert subscriber.connection() == 1
    normal = ReasonCode(PacketTypes.DISCONNECT, "Normal disconnection")
    subscriber._on_disconnect(fake, None, None, normal, None)  # type: ignore[arg-type]
    assert subscriber.connection() is None
    subscriber._on_connect(fake, None, None, ReasonCode(PacketTypes.CONNACK, "Not authorized"), None)  # type: ignore[arg-type]
    assert subscriber.connection() is None
    subscriber._on_connect(fake, None, None, success, None)  # type: ignore[arg-type]
    assert subscriber.connection() == 2


def test_a_route_added_while_connected_subscribes_at_once(
    subscriber: Subscriber, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = RecordingClient()
    monkeypatch.setattr(subscriber, "client", client)
    subscriber.add_route("a/b", lambda payload: None)
    assert client.subscriptions == []  # not connected: on_connect will
    subscriber.connected = True
    subscriber.add_route("c/d", lambda payload: None, qos=0)
    assert client.subscriptions == [("c/d", 0)]


@pytest.mark.parametrize(
    ("rc", "qos", "taken"),
    [(0, 1, True), (4, 1, True), (4, 0, False), (15, 1, False)],  # 4: no connection (QoS 1 waits), 15: queue full
)
def test_publish_says_whether_paho_took_it(
    subscriber: Subscriber, monkeypatch: pytest.MonkeyPatch, rc: int, qos: int, taken: bool
) -> None:
    client = RecordingClient(rc)
    monkeypatch.setattr(subscriber, "client", client)
    assert subscriber.publish("meters/A/agg/60s", b"{}", qos, True) is taken
    assert client.published == [("meters/A/agg/60s", b"{}", qos, True)]


def test_failover_moves_to_the_next_broker_before_the_next_attempt() -> None:
    """Lost, refused or unreachable: paho's next attempt (on_pre_connect) goes to the next node of the list, round
    robin, with that node's login; a good connection stays where it is."""
    from config.settings import parse_broker_urls

    broker = parse_broker_urls("mqtt://u1:p1@127.0.0.1:1001,mqtt://u2:p2@127.0.0.1:1002")
    subscriber = Subscriber(broker, Ingest(History(3600)))
    client = subscriber.client
    assert (subscriber.node_url(), client.host, client.port) == ("mqtt://u1@127.0.0.1:1001", "", 1883)
    client.connect_async("127.0.0.1", 1001)  # what start() does, without the network thread
    subscriber._on_pre_connect(client, None)  # the first attempt: the first node
    assert (client.host, client.port) == ("127.0.0.1", 1001)
    subscriber._on_connect_fail(client, None)  # TCP refused
    subscriber._on_pre_connect(client, None)
    assert (client.host, client.port, subscriber.node_url()) == ("127.0.0.1", 1002, "mqtt://u2@127.0.0.1:1002")
    assert client._username == b"u2"
    refused = ReasonCode(PacketTypes.CONNACK, "Not authorized")
    subscriber._on_connect(client, None, None, refused, None)  # type: ignore[arg-type]
    subscriber._on_pre_connect(client, None)
    assert (client.host, client.port, client._username) == ("127.0.0.1", 1001, b"u1")  # round robin
    ok = ReasonCode(PacketTypes.CONNACK, "Success")
    subscriber._on_connect(client, None, None, ok, None)  # type: ignore[arg-type]
    subscriber._on_pre_connect(client, None)  # a reconnect after a good connection that was not lost: stays
    assert client.port == 1001
    lost = ReasonCode(PacketTypes.DISCONNECT, "Unspecified error")
    subscriber._on_disconnect(client, None, None, lost, None)  # type: ignore[arg-type]
    subscriber._on_pre_connect(client, None)
    assert (client.port, subscriber.node_url()) == (1002, "mqtt://u2@127.0.0.1:1002")


def test_one_broker_never_moves(subscriber: Subscriber) -> None:
    client = subscriber.client
    client.connect_async("127.0.0.1", 1883)
    subscriber._on_connect_fail(client, None)
    subscriber._on_pre_connect(client, None)
    assert (client.host, client.port, subscriber.node_url()) == ("127.0.0.1", 1883, "mqtt://user@127.0.0.1:1883")
