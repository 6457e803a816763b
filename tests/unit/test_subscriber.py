"""bridge.subscriber: built paho messages go straight into the callback (no broker, start() is never called)."""

from __future__ import annotations

import pytest
from paho.mqtt.client import MQTTMessage
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from bridge.history import History
from bridge.ingest import Ingest
from bridge.subscriber import Subscriber
from config.settings import BrokerAddress
from config.wire import READING_SUBSCRIPTION, STATUS_SUBSCRIPTION, Reading, encode_reading

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
    def broken(reading: Reading) -> bool:
        raise MemoryError("no room")

    monkeypatch.setattr(subscriber.ingest.history, "add", broken)
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
    assert fake.subscriptions == [[(READING_SUBSCRIPTION, 1), (STATUS_SUBSCRIPTION, 1)]]
    subscriber._on_disconnect(fake, None, None, ReasonCode(PacketTypes.DISCONNECT, "Normal disconnection"), None)  # type: ignore[arg-type]
    assert not subscriber.connected


def test_refused_connect_does_not_subscribe(subscriber: Subscriber) -> None:
    fake = FakeClient()
    refused = ReasonCode(PacketTypes.CONNACK, "Not authorized")
    subscriber._on_connect(fake, None, None, refused, None)  # type: ignore[arg-type]
    assert not subscriber.connected
    assert fake.subscriptions == []
