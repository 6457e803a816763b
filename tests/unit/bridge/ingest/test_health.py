"""bridge.ingest.health: the pure decisions (what /healthz reports; when a session is dead), and the subscriber's
watchdog driven by a fake clock (no broker: the connection's events are called directly, as in test_subscriber)."""

from __future__ import annotations

import itertools
import socket

import pytest

from bridge.ingest.health import (
    DEAD_AFTER_S,
    DISCONNECTED_S,
    MAX_DEAD_AFTER_S,
    QUIET_FLOOR_S,
    HealthBounds,
    HealthSignals,
    SessionWatch,
    degraded_reasons,
)
from bridge.ingest.history import History
from bridge.ingest.messages import Ingest
from bridge.ingest.subscriber import Subscriber
from config.mqtt.packet import puback_packets, split_packets
from config.settings import DEFAULT_BRIDGE_ID, BrokerAddress
from config.topics import probe_topic
from tests.support.subscriber import Wire, deliver

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


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Socket:
    """The connection's socket, which the watchdog may shut down, and what is written on it."""

    def __init__(self, subscriber: Subscriber) -> None:
        self.sock, self.peer = socket.socketpair()
        subscriber._sock = self.sock
        self.wire = Wire(subscriber)

    def probes(self) -> list[tuple[str, int, bool]]:
        return [(w.topics[0][0], w.topics[0][1], w.retain) for w in self.wire.packets() if w.kind == "publish"]

    def close(self) -> None:
        self.sock.close()
        self.peer.close()


@pytest.fixture
def watched() -> tuple[Subscriber, Clock, Socket]:
    clock = Clock()
    subscriber = Subscriber(BrokerAddress("127.0.0.1", 1883, "u", "p"), Ingest(History(3600)), clock=clock)
    sock = Socket(subscriber)
    yield subscriber, clock, sock  # type: ignore[misc]
    sock.close()


def probe_back(subscriber: Subscriber) -> None:
    deliver(subscriber, probe_topic(DEFAULT_BRIDGE_ID).encode(), b"1000.000", qos=1)


def test_watchdog_probes_while_connected_and_keeps_a_live_session(watched: tuple[Subscriber, Clock, Socket]) -> None:
    subscriber, clock, sock = watched
    subscriber._watch_pass()
    assert sock.probes() == []  # not connected: no probe to pile up for the next connection
    subscriber._on_connack(0, False)
    assert sock.probes() == [(probe_topic(DEFAULT_BRIDGE_ID), 1, False)]  # one at once
    for _ in range(20):  # 40 s of a live session: every probe comes back
        clock.now += 2.0
        subscriber._watch_pass()
        probe_back(subscriber)
    assert len(sock.probes()) == 20
    assert subscriber.watch.forced == 0
    assert subscriber.probes_received == 20
    assert subscriber.alive()
    assert subscriber.ingest.counters() == {"accepted": 0, "duplicates": 0, "rejected": {}}  # probes bypass ingest


def test_watchdog_shuts_a_silent_sessions_socket_down(
    watched: tuple[Subscriber, Clock, Socket], caplog: pytest.LogCaptureFixture
) -> None:
    subscriber, clock, sock = watched
    subscriber._on_connack(0, False)
    probe_back(subscriber)
    clock.now += DEAD_AFTER_S
    subscriber._watch_pass()
    assert subscriber.watch.forced == 0
    assert subscriber.alive()
    clock.now += 0.5
    assert not subscriber.alive()  # connected, known dead: not alive
    assert subscriber.connected
    with caplog.at_level("WARNING", logger="bridge.ingest.subscriber"):
        subscriber._watch_pass()
        subscriber._watch_pass()  # the same event: no second force, no second warning
    assert subscriber.watch.forced == 1
    assert [r.getMessage() for r in caplog.records if "forcing a reconnect" in r.getMessage()] != []
    assert len([r for r in caplog.records if r.levelname == "WARNING"]) == 1
    # the network thread, waiting on this socket, now reads EOF: the connection is lost, it reconnects
    assert sock.sock.recv(1) == b""
    subscriber._lost("connection closed")
    assert subscriber.disconnected_s() == 0.0


def test_watchdog_survives_a_socket_already_gone(watched: tuple[Subscriber, Clock, Socket]) -> None:
    subscriber, clock, sock = watched
    subscriber._on_connack(0, False)
    sock.sock.close()
    clock.now += DEAD_AFTER_S + 1
    subscriber._watch_pass()  # must not raise
    assert subscriber.watch.forced == 1


def test_ages_and_disconnection_follow_the_clock(watched: tuple[Subscriber, Clock, Socket]) -> None:
    subscriber, clock, _ = watched
    clock.now += 3
    assert subscriber.last_message_age_s() == 3.0  # nothing yet: since the subscriber started
    assert subscriber.disconnected_s() == 3.0  # never connected
    subscriber._on_connack(0, False)
    assert subscriber.disconnected_s() is None
    probe_back(subscriber)
    clock.now += 4
    assert subscriber.last_message_age_s() == 4.0
    subscriber._lost("connection closed")
    clock.now += 6
    assert subscriber.disconnected_s() == 6.0
    assert not subscriber.alive()


def test_a_suback_counts_as_life(watched: tuple[Subscriber, Clock, Socket], caplog: pytest.LogCaptureFixture) -> None:
    """A broker busy making subscriptions delivers nothing for a while, yet answers SUBACKs: not dead; refused
    filters are logged."""
    subscriber, clock, _ = watched
    subscriber._on_connack(0, False)
    clock.now += DEAD_AFTER_S - 1
    with caplog.at_level("WARNING", logger="bridge.ingest.subscriber"):
        subscriber._handle(split_packets(bytearray(b"\x90\x05\x00\x01\x01\x80\x80")))  # 2 of 3 refused
    assert "refused 2 of 3 filters" in caplog.text
    clock.now += 2
    subscriber._watch_pass()
    assert subscriber.watch.forced == 0
    assert subscriber.alive()


def test_status_messages_are_noted(watched: tuple[Subscriber, Clock, Socket]) -> None:
    subscriber, clock, _ = watched
    clock.now += 1
    deliver(subscriber, b"meters/A/status", b"online")
    assert subscriber.last_status_s == clock.now
    assert subscriber.ingest.history.summary("A").status == "online"


def test_a_broken_clock_does_not_escape_the_handler(caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> float:
        raise RuntimeError("a bug")

    subscriber = Subscriber(BrokerAddress("127.0.0.1", 1883, "u", "p"), Ingest(History(3600)), clock=lambda: 0.0)
    subscriber._clock = broken
    with caplog.at_level("ERROR", logger="bridge.ingest.subscriber"):
        assert deliver(subscriber, b"meters/A/status", b"online", qos=1, mid=9) == puback_packets([9])  # no raise
    assert subscriber.ingest.history.summary("A").status == "online"
    assert "clock failed" in caplog.text
