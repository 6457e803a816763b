"""config.mqtt.connection against real brokers (amqtt and Mosquitto, authenticated): the meters' own MQTT client.

Each test drives one connection with a selector in the test's thread, waiting on its socket with a deadline (never a
sleep), and checks what a paho observer on the same broker sees."""

from __future__ import annotations

import selectors
import socket
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from config.credentials import BRIDGE_USER
from config.mqtt.connection import MqttConnection
from config.mqtt.packet import Message, Will
from tests.support.mqtt import collecting
from tests.support.procs import LOOPBACK, Proc, login

WAIT_S = 10.0


class Driven:
    """A connection as meter ``meter_id`` and what its callbacks saw."""

    def __init__(self, meter_id: str, password: str | None = None) -> None:
        auth = login(meter_id)
        self.conn = MqttConnection(
            f"meter-{meter_id}",
            will=Will(f"meters/{meter_id}/status", b"offline"),
            username=auth["username"],
            password=auth["password"] if password is None else password,
        )
        self.codes: list[int] = []
        self.lost: list[str] = []
        self.acked: list[int] = []
        self.messages: list[Message] = []
        self.conn.on_connect = self.codes.append
        self.conn.on_disconnect = self.lost.append
        self.conn.on_publish = self.acked.append
        self.conn.on_message = self.messages.append

    def connect(self, port: int) -> None:
        """Connect to the broker on ``port`` and wait for an accepted CONNACK."""
        self.conn.connect(LOOPBACK, port, 30)
        self.until(lambda: self.conn.connected, "CONNACK")

    def until(self, done: Callable[[], bool], what: str) -> None:
        """Service the socket until ``done()``; AssertionError after ``WAIT_S``."""
        deadline = time.monotonic() + WAIT_S
        with selectors.DefaultSelector() as selector:
            while not done():
                left = deadline - time.monotonic()
                assert left > 0, f"{what}: not within {WAIT_S} s (codes {self.codes}, lost {self.lost})"
                sock = self.conn.socket()
                if sock is None:
                    raise AssertionError(f"{what}: connection closed ({self.lost})")
                events = selectors.EVENT_READ | (selectors.EVENT_WRITE if self.conn.want_write() else 0)
                selector.register(sock, events)
                for _, ready in selector.select(min(left, 0.2)):
                    if ready & selectors.EVENT_READ:
                        self.conn.read()
                    if ready & selectors.EVENT_WRITE:
                        self.conn.write()
                selector.unregister(sock)
                self.conn.misc()


def test_publish_is_acknowledged_and_delivered(broker: Proc) -> None:
    port = broker.port or 0
    with collecting(port, ["meters/A/#"]) as observer:
        meter = Driven("A")
        meter.connect(port)
        assert meter.codes == [0]
        mids = [meter.conn.publish("meters/A/reading", f"r{i}".encode(), 1) for i in range(3)]
        qos0 = meter.conn.publish("meters/A/reading", b"q0", 0)
        meter.until(lambda: len(meter.acked) == 3, "3 PUBACKs")
        assert meter.acked == mids
        assert all(mid is not None and meter.conn.is_acked(mid) for mid in mids)
        assert qos0 == 0
        got = [observer.wait_for(lambda m: m.topic == "meters/A/reading", WAIT_S).payload for _ in range(4)]
        assert got == [b"r0", b"r1", b"r2", b"q0"]
        meter.conn.disconnect()
        assert meter.conn.socket() is None
        assert meter.lost == []  # a disconnect we asked for is not reported as a loss


def test_subscription_receives_qos1_commands(broker: Proc) -> None:
    port = broker.port or 0
    meter = Driven("A")
    meter.conn.on_connect = lambda code: meter.conn.subscribe("meters/A/cmd/replay", 1)
    meter.connect(port)
    bridge = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bridge-mqttconn", protocol=mqtt.MQTTv311)
    auth = login(BRIDGE_USER)
    bridge.username_pw_set(auth["username"], auth["password"])
    bridge.connect(LOOPBACK, port, 30)
    bridge.loop_start()
    try:
        # The broker handles a connection's packets in order: once a PUBLISH sent after the SUBSCRIBE is acknowledged,
        # the subscription is in place.
        mid = meter.conn.publish("meters/A/status", b"online", 1, retain=True)
        meter.until(lambda: mid is not None and meter.conn.is_acked(mid), "PUBACK after SUBSCRIBE")
        bridge.publish("meters/A/cmd/replay", b'{"from_seq": 1, "to_seq": 2}', qos=1).wait_for_publish(WAIT_S)
        meter.until(lambda: bool(meter.messages), "the command")
        first = meter.messages[0]
        assert (first.topic, first.payload, first.qos) == ("meters/A/cmd/replay", b'{"from_seq": 1, "to_seq": 2}', 1)
    finally:
        bridge.disconnect()
        bridge.loop_stop()
        bridge._reset_sockets()
        meter.conn.disconnect()


def test_wrong_password_is_refused(broker: Proc) -> None:
    meter = Driven("A", password="not the password")
    meter.conn.connect(LOOPBACK, broker.port or 0, 30)
    meter.until(lambda: bool(meter.lost), "refusal")
    assert meter.codes in ([4], [5])  # bad user name or password / not authorised
    assert meter.conn.socket() is None
    assert "refused" in meter.lost[0]


def test_will_on_a_lost_connection_and_resend_after_reconnect(broker: Proc) -> None:
    port = broker.port or 0
    with collecting(port, ["meters/A/#"]) as observer:
        meter = Driven("A")
        meter.connect(port)
        sock = meter.conn.socket()
        assert sock is not None
        sock.shutdown(socket.SHUT_RDWR)  # the connection breaks without a DISCONNECT
        meter.until(lambda: bool(meter.lost), "the loss noticed")
        assert meter.conn.socket() is None
        assert not meter.conn.connected
        will = observer.wait_for(lambda m: m.topic == "meters/A/status", WAIT_S)
        assert will.payload == b"offline"

        mid = meter.conn.publish("meters/A/reading", b"while away", 1)  # kept, sent after the next CONNACK
        assert mid is not None
        assert not meter.conn.is_acked(mid)
        meter.conn.connect(LOOPBACK, port, 30)
        meter.until(lambda: meter.conn.is_acked(mid), "the held message acknowledged")
        assert observer.wait_for(lambda m: m.topic == "meters/A/reading", WAIT_S).payload == b"while away"
        meter.conn.disconnect()


def test_queue_limit_refuses_instead_of_growing() -> None:
    conn = MqttConnection("meter-A", max_queued=2)  # never connected: messages wait
    assert conn.publish("meters/A/reading", b"1", 1) == 1
    assert conn.publish("meters/A/reading", b"2", 1) == 2
    assert conn.publish("meters/A/reading", b"3", 1) is None
    assert conn.queued == 2
