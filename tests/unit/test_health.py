"""bridge.health: the pure decisions (what /healthz reports; when a session is dead), and the subscriber's watchdog
driven by a fake clock (no broker: paho's callbacks are called directly, as in test_subscriber)."""

from __future__ import annotations

import itertools
import socket

import pytest
from paho.mqtt.client import MQTTMessage
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from bridge.health import (
    DEAD_AFTER_S,
    DISCONNECTED_S,
    MAX_DEAD_AFTER_S,
    QUIET_FLOOR_S,
    HealthBounds,
    HealthSignals,
    SessionWatch,
    degraded_reasons,
)
from bridge.history import History
from bridge.ingest import Ingest
from bridge.subscriber import Subscriber
from config.settings import DEFAULT_BRIDGE_ID, BrokerAddress
from config.wire import probe_topic

BOUNDS = HealthBounds(quiet_s=10.0, disconnected_s=5.0)
HEALTHY = HealthSignals(online_meters=3, online_quiet_s=1.0, last_message_age_s=0.5, disconnected_s=None)


def signals(**changes: object) -> HealthSignals:
    fields = {
        "online_meters": HEALTHY.online_meters,
        "online_quiet_s": HEALTHY.online_quiet_s,
        "last_message_age_s": HEALTHY.last_message_age_s,
        "disconnected_s": HEALTHY.disconnected_s,
        **changes,
    }
    return HealthSignals(**fields)  # type: ignore[arg-type]


def test_bounds_follow_the_speed_above_a_floor() -> None:
    assert HealthBounds.for_speed(1.0).quiet_s == QUIET_FLOOR_S == 10.0  # 10 periods of 1 s
    assert HealthBounds.for_speed(60.0).quiet_s == QUIET_FLOOR_S  # 10 periods are 0.17 s: the floor
    assert HealthBounds.for_speed(0.1).quiet_s == pytest.approx(100.0)  # a reading every 10 s
    assert HealthBounds.for_speed(1.0).disconnected_s == DISCONNECTED_S
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="speed"):
            HealthBounds.for_speed(bad)
    with pytest.raises(ValueError, match="quiet_s"):
        HealthBounds(quiet_s=0)
    with pytest.raises(ValueError, match="disconnected_s"):
        HealthBounds(disconnected_s=float("nan"))


def test_healthy_says_nothing() -> None:
    assert degraded_reasons(HEALTHY, BOUNDS) == []
    # Exactly at a bound is still healthy; only past it counts.
    assert degraded_reasons(signals(online_quiet_s=10.0, last_message_age_s=10.0, disconnected_s=5.0), BOUNDS) == []


def test_no_meter_online_is_healthy_however_quiet() -> None:
    assert degraded_reasons(signals(online_meters=0, online_quiet_s=1e6), BOUNDS) == []


def test_each_reason_alone() -> None:
    [silent] = degraded_reasons(signals(online_quiet_s=12.4), BOUNDS)
    assert silent == "no reading from any of the 3 online meters for 12 s (bound 10 s)"
    [one] = degraded_reasons(signals(online_meters=1, online_quiet_s=11.0), BOUNDS)
    assert one.startswith("no reading from the online meter for 11 s")
    [dead] = degraded_reasons(signals(last_message_age_s=30.0), BOUNDS)
    assert dead == "the MQTT session delivered nothing for 30 s (bound 10 s)"
    [down] = degraded_reasons(signals(disconnected_s=6.0), BOUNDS)
    assert down == "disconnected from the MQTT broker for 6 s (bound 5 s)"


def test_several_reasons_are_all_listed() -> None:
    reasons = degraded_reasons(signals(online_quiet_s=60.0, last_message_age_s=60.0, disconnected_s=60.0), BOUNDS)
    assert len(reasons) == 3


def test_without_mqtt_only_the_meters_count() -> None:
    assert degraded_reasons(signals(last_message_age_s=None, disconnected_s=None), BOUNDS) == []


# --- SessionWatch ----------------------------------------------------------------------------------------------


def test_a_session_that_delivers_is_never_forced() -> None:
    watch = SessionWatch()
    for second in range(1000):  # a message every second
        assert not watch.check(float(second), connected_since_s=0.0, last_message_s=float(second))
    assert watch.forced == 0


def test_silent_past_the_bound_forces_once_per_bound() -> None:
    watch = SessionWatch(dead_after_s=7.0, max_dead_after_s=300.0)
    assert not watch.silent(7.0, connected_since_s=0.0, last_message_s=None)
    assert not watch.check(7.0, connected_since_s=0.0, last_message_s=None)  # at the bound: not yet
    assert watch.silent(7.5, connected_since_s=0.0, last_message_s=None)
    assert watch.check(7.5, connected_since_s=0.0, last_message_s=None)
    assert watch.forced == 1
    # paho has not noticed yet (same connection): no second force until another bound has passed
    assert not watch.check(9.5, connected_since_s=0.0, last_message_s=None)
    assert watch.forced == 1


def test_disconnected_is_not_silent() -> None:
    watch = SessionWatch()
    assert not watch.silent(1e6, connected_since_s=None, last_message_s=None)
    assert not watch.check(1e6, connected_since_s=None, last_message_s=None)


def test_a_new_connection_gets_a_whole_bound() -> None:
    watch = SessionWatch(dead_after_s=7.0)
    assert watch.check(100.0, connected_since_s=0.0, last_message_s=50.0)
    assert not watch.check(106.0, connected_since_s=101.0, last_message_s=50.0)  # reconnected at 101


def test_fruitless_forced_reconnects_back_off_and_a_message_resets() -> None:
    watch = SessionWatch(dead_after_s=7.0, max_dead_after_s=30.0)
    now = 0.0
    forced_at = []
    for _ in range(2000):  # bounded: 200 s in 0.1 s steps, reconnected 0.1 s after each force, nothing delivered
        now += 0.1
        if watch.check(now, connected_since_s=(forced_at[-1] + 0.1) if forced_at else 0.0, last_message_s=None):
            forced_at.append(now)
    gaps = [round(b - a) for a, b in itertools.pairwise(forced_at)]
    assert gaps[:3] == [7, 14, 28]
    assert set(gaps[3:]) == {30}  # capped
    assert watch.bound_s() == 30.0
    # Something delivered after the last force: the next bound is the first again.
    assert not watch.check(now + 1, connected_since_s=now, last_message_s=now + 0.5)
    assert watch.bound_s() == 7.0


def test_watch_refuses_nonsense_bounds() -> None:
    with pytest.raises(ValueError, match="dead_after_s"):
        SessionWatch(dead_after_s=0)
    with pytest.raises(ValueError, match="dead_after_s"):
        SessionWatch(dead_after_s=10, max_dead_after_s=5)
    assert SessionWatch().dead_after_s == DEAD_AFTER_S <= MAX_DEAD_AFTER_S


# --- The subscriber's watchdog, fake clock -----------------------------------------------------------------------

SUCCESS = ReasonCode(PacketTypes.CONNACK, "Success")
NORMAL = ReasonCode(PacketTypes.DISCONNECT, "Normal disconnection")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakePaho:
    """paho's side of the watchdog: subscriptions, publishes, and the socket the watchdog may shut down."""

    def __init__(self) -> None:
        self.published: list[tuple[str, int, bool]] = []
        self.sock, self.peer = socket.socketpair()

    def subscribe(self, *args: object) -> None:
        """Take a subscription."""

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> None:
        self.published.append((topic, qos, retain))

    def socket(self) -> socket.socket:
        return self.sock

    def close(self) -> None:
        self.sock.close()
        self.peer.close()


@pytest.fixture
def watched() -> tuple[Subscriber, Clock, FakePaho]:
    clock = Clock()
    subscriber = Subscriber(BrokerAddress("127.0.0.1", 1883, "u", "p"), Ingest(History(3600)), clock=clock)
    paho = FakePaho()
    subscriber.client = paho  # type: ignore[assignment]
    yield subscriber, clock, paho  # type: ignore[misc]
    paho.close()


def probe_back(subscriber: Subscriber) -> None:
    message = MQTTMessage(topic=probe_topic(DEFAULT_BRIDGE_ID).encode())
    message.payload = b"1000.000"
    subscriber._on_message(subscriber.client, None, message)


def test_watchdog_probes_while_connected_and_keeps_a_live_session(watched: tuple[Subscriber, Clock, FakePaho]) -> None:
    subscriber, clock, paho = watched
    subscriber._watch_pass()
    assert paho.published == []  # not connected: no probe to pile up in paho's queue
    subscriber._on_connect(paho, None, None, SUCCESS, None)  # type: ignore[arg-type]
    assert paho.published == [(probe_topic(DEFAULT_BRIDGE_ID), 1, False)]  # one at once
    for _ in range(20):  # 40 s of a live session: every probe comes back
        clock.now += 2.0
        subscriber._watch_pass()
        probe_back(subscriber)
    assert len(paho.published) == 21
    assert subscriber.watch.forced == 0
    assert subscriber.probes_received == 20
    assert subscriber.alive()
    assert subscriber.ingest.counters() == {"accepted": 0, "duplicates": 0, "rejected": {}}  # probes bypass ingest


def test_watchdog_shuts_a_silent_sessions_socket_down(
    watched: tuple[Subscriber, Clock, FakePaho], caplog: pytest.LogCaptureFixture
) -> None:
    subscriber, clock, paho = watched
    subscriber._on_connect(paho, None, None, SUCCESS, None)  # type: ignore[arg-type]
    probe_back(subscriber)
    clock.now += DEAD_AFTER_S
    subscriber._watch_pass()
    assert subscriber.watch.forced == 0
    assert subscriber.alive()
    clock.now += 0.5
    assert not subscriber.alive()  # connected per paho, known dead: not alive
    assert subscriber.connected
    with caplog.at_level("WARNING", logger="bridge.subscriber"):
        subscriber._watch_pass()
        subscriber._watch_pass()  # the same event: no second force, no second warning
    assert subscriber.watch.forced == 1
    assert [r.getMessage() for r in caplog.records if "forcing a reconnect" in r.getMessage()] != []
    assert len([r for r in caplog.records if r.levelname == "WARNING"]) == 1
    # paho's network thread, in select() on this socket, now reads EOF: the connection is lost, it reconnects
    assert paho.sock.recv(1) == b""
    subscriber._on_disconnect(paho, None, None, NORMAL, None)  # type: ignore[arg-type]
    assert subscriber.disconnected_s() == 0.0


def test_watchdog_survives_a_socket_already_gone(watched: tuple[Subscriber, Clock, FakePaho]) -> None:
    subscriber, clock, paho = watched
    subscriber._on_connect(paho, None, None, SUCCESS, None)  # type: ignore[arg-type]
    paho.sock.close()
    clock.now += DEAD_AFTER_S + 1
    subscriber._watch_pass()  # must not raise
    assert subscriber.watch.forced == 1


def test_ages_and_disconnection_follow_the_clock(watched: tuple[Subscriber, Clock, FakePaho]) -> None:
    subscriber, clock, paho = watched
    clock.now += 3
    assert subscriber.last_message_age_s() == 3.0  # nothing yet: since the subscriber started
    assert subscriber.disconnected_s() == 3.0  # never connected
    subscriber._on_connect(paho, None, None, SUCCESS, None)  # type: ignore[arg-type]
    assert subscriber.disconnected_s() is None
    probe_back(subscriber)
    clock.now += 4
    assert subscriber.last_message_age_s() == 4.0
    subscriber._on_disconnect(paho, None, None, NORMAL, None)  # type: ignore[arg-type]
    clock.now += 6
    assert subscriber.disconnected_s() == 6.0
    assert not subscriber.alive()


def test_status_messages_are_noted(watched: tuple[Subscriber, Clock, FakePaho]) -> None:
    subscriber, clock, _ = watched
    message = MQTTMessage(topic=b"meters/A/status")
    message.payload = b"online"
    clock.now += 1
    subscriber._on_message(subscriber.client, None, message)
    assert subscriber.last_status_s == clock.now
    assert subscriber.ingest.history.summary("A").status == "online"


def test_a_broken_clock_does_not_escape_on_message() -> None:
    def broken() -> float:
        raise RuntimeError("a bug")

    subscriber = Subscriber(BrokerAddress("127.0.0.1", 1883, "u", "p"), Ingest(History(3600)), clock=lambda: 0.0)
    subscriber._clock = broken
    subscriber._on_message(subscriber.client, None, MQTTMessage(topic=b"meters/A/status"))  # must not raise
