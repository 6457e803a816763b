"""bridge.republish.aggregates: final windows and discovery through a fake publisher, from a History filled with
readings."""

from __future__ import annotations

import dataclasses
import json
import threading
from dataclasses import dataclass
from typing import Any

import pytest

from bridge.ingest.history import History
from bridge.republish.aggregates import Republisher
from bridge.republish.discovery import Origin
from bridge.services.baseline import Baselines, window_status
from bridge.windows.aggregate import make_window
from bridge.windows.document import window_document
from config.settings import Settings, load_settings
from config.wire import Reading

T0 = 1_704_067_200  # 2024-01-01T00:00:00Z, a UTC midnight
AGG_A = "meters/A/agg/60s"
ORIGIN = Origin("smart-meter-fleet", "0.1.0", "http://127.0.0.1:5000/")


@dataclass(frozen=True)
class Published:
    topic: str
    payload: bytes
    qos: int
    retain: bool


class FakePublisher:
    """Records what would go to the broker; answers as paho's publish would (accepted or not)."""

    def __init__(self) -> None:
        self.messages: list[Published] = []
        self.accept = True

    def __call__(self, topic: str, payload: bytes, qos: int, retain: bool) -> bool:
        self.messages.append(Published(topic, payload, qos, retain))
        return self.accept

    def docs(self, topic: str) -> list[dict[str, Any]]:
        return [json.loads(m.payload) for m in self.messages if m.topic == topic]

    def topics(self) -> list[str]:
        return [m.topic for m in self.messages]

    def clear(self) -> None:
        self.messages.clear()


def geyser_w(ts: int) -> float:
    return 3000.0 if (ts - T0) // 60 % 2 else 0.0  # on every other minute


def feed(history: History, meter: str, start: int, end: int, overall_w: float = 2500.0) -> None:
    """Readings for seconds ``[start, end)``: AC 1.5 kW, the geyser every other minute, energies integrating them."""
    for ts in range(start, end):
        i = ts - T0
        on_minutes = i // 120 * 60 + max(0, i % 120 - 60)  # seconds the geyser has run before ts
        reading = Reading(
            meter,
            i,
            ts,
            1500.0,
            geyser_w(ts),
            overall_w,
            round(1.5 * i / 3600, 4),
            round(3.0 * on_minutes / 3600, 4),
            round(2.5 * i / 3600, 4),
        )
        assert history.add(reading)


def settings(**env: str) -> Settings:
    return load_settings({"FLEET_HOUSEHOLDS": "A,B", **env})


class Rig:
    """A republisher wired to a fake publisher, over a History and Baselines of its own."""

    def __init__(self, env: dict[str, str] | None = None, connected: bool = True, **overrides: Any) -> None:
        self.settings = dataclasses.replace(settings(**(env or {})), **overrides)
        self.wall = 0.0  # the wall clock readings arrive by (monotonic seconds): tests move it with the data
        self.history = History(7200, clock=lambda: self.wall)
        self.baselines = Baselines(self.history, self.settings.zone(), self.settings.grace_s)
        self.publisher = FakePublisher()
        self.connection: int | None = 1 if connected else None
        self.republisher = Republisher(
            self.history,
            self.baselines,
            self.settings,
            self.publisher,
            connection=lambda: self.connection,
            origin=ORIGIN,
        )

    def step(self) -> int:
        return self.republisher.step()


@pytest.fixture
def rig() -> Rig:
    return Rig()


def test_windows_go_out_retained_qos1_consecutive_and_aligned(rig: Rig) -> None:
    rig.step()  # the bridge runs before meter A is heard
    feed(rig.history, "A", T0, T0 + 30)
    rig.step()
    assert rig.publisher.docs(AGG_A) == []  # no window final yet
    feed(rig.history, "A", T0 + 30, T0 + 61)  # watermark T0 + 61: past the end of the first window
    rig.step()
    feed(rig.history, "A", T0 + 61, T0 + 241)
    rig.step()
    docs = rig.publisher.docs(AGG_A)
    assert [d["window_start"] for d in docs] == [f"2024-01-01T00:0{m}:00Z" for m in range(4)]
    assert all(m.qos == 1 and m.retain for m in rig.publisher.messages if m.topic == AGG_A)
    for doc in docs:
        assert doc["household"] == "A"
        assert doc["interval"] == 60
        assert doc["samples"] == 60
        assert doc["AC"] == 1.5
        assert doc["Overall"] == 2.5
    assert [d["Geyser"] for d in docs] == [0.0, 3.0, 0.0, 3.0]
    rig.step()
    assert len(rig.publisher.docs(AGG_A)) == 4  # nothing twice


def test_a_window_is_final_once_its_last_second_is_in_by_default(rig: Rig) -> None:
    assert rig.settings.grace_s == 0
    rig.step()
    feed(rig.history, "A", T0, T0 + 59)
    rig.step()
    assert rig.publisher.docs(AGG_A) == []  # its last second is missing
    feed(rig.history, "A", T0 + 59, T0 + 60)  # watermark T0 + 60 = the window's end
    rig.step()
    assert [d["window_end"] for d in rig.publisher.docs(AGG_A)] == ["2024-01-01T00:01:00Z"]
    assert rig.publisher.docs(AGG_A)[0]["samples"] == 60


def test_a_window_waits_for_the_grace_period() -> None:
    rig = Rig({"FLEET_GRACE_S": "1"})
    rig.step()
    feed(rig.history, "A", T0, T0 + 60)  # the window's last second is in, but not end + grace_s
    rig.step()
    assert rig.publisher.docs(AGG_A) == []
    feed(rig.history, "A", T0 + 60, T0 + 61)
    rig.step()
    assert [d["window_end"] for d in rig.publisher.docs(AGG_A)] == ["2024-01-01T00:01:00Z"]


def test_document_is_the_sse_event_plus_the_energy_registers(rig: Rig) -> None:
    rig.step()
    feed(rig.history, "A", T0, T0 + 61)
    rig.step()
    feed(rig.history, "A", T0 + 61, T0 + 121)
    rig.step()
    (first, second) = rig.publisher.docs(AGG_A)
    start, end = T0 + 60, T0 + 120
    samples, present = rig.history.samples("A", start, end)
    window = make_window("A", 60, start, end, samples, present)
    status, worst = window_status(window, rig.baselines.get("A", 60), rig.settings.zone())
    expected = window_document(window, status, worst)
    energy = rig.history.last_energy("A", start, end)
    assert energy is not None
    expected.update(ac_kwh=energy[0], geyser_kwh=energy[1], overall_kwh=energy[2])
    assert second == expected
    assert (second["ac_kwh"], second["geyser_kwh"], second["overall_kwh"]) == (0.0496, 0.0492, 0.0826)
    assert second["ac_kwh"] > first["ac_kwh"]
    assert second["overall_kwh"] > first["overall_kwh"]


def test_energy_counters_never_decrease(rig: Rig) -> None:
    rig.step()
    for minute in range(10):
        feed(rig.history, "A", T0 + 60 * minute, T0 + 60 * (minute + 1))
        rig.step()
    feed(rig.history, "A", T0 + 600, T0 + 601)
    rig.step()
    docs = rig.publisher.docs(AGG_A)
    assert len(docs) == 10
    for key in ("ac_kwh", "geyser_kwh", "overall_kwh"):
        values = [d[key] for d in docs]
        assert values == sorted(values), key
    assert len({d["overall_kwh"] for d in docs}) == 10


def test_live_start_at_the_newest_final_window(rig: Rig) -> None:
    """A meter first heard mid-stream starts at its newest final window; its older history is not replayed."""
    rig.step()
    feed(rig.history, "A", T0, T0 + 200)  # arrives between two passes (a burst, or the meter catching up)
    rig.step()
    assert [d["window_start"] for d in rig.publisher.docs(AGG_A)] == ["2024-01-01T00:02:00Z"]


def test_history_held_at_the_first_pass_is_not_replayed() -> None:
    """After a restart the history reloaded from disk is old: the meter counts as heard once it sends again."""
    rig = Rig()
    feed(rig.history, "A", T0, T0 + 300)
    rig.step()
    rig.step()
    assert rig.publisher.docs(AGG_A) == []
    rig.wall += 3600.0  # an hour passes (speed 1): the meter's time may move on by as much
    feed(rig.history, "A", T0 + 3600, T0 + 3600 + 61)  # an hour later: the gap gives no flood of empty windows
    rig.step()
    assert [d["window_start"] for d in rig.publisher.docs(AGG_A)] == ["2024-01-01T01:00:00Z"]


def test_a_window_without_readings_is_null_and_red(rig: Rig) -> None:
    rig.step()
    feed(rig.history, "A", T0, T0 + 61)
    rig.step()
    feed(rig.history, "A", T0 + 180, T0 + 241)  # the meter was silent from 00:01:01 to 00:03:00
    rig.step()
    assert [d["samples"] for d in rig.publisher.docs(AGG_A)] == [60, 1, 0, 60]
    empty = rig.publisher.docs(AGG_A)[2]
    assert empty["window_start"] == "2024-01-01T00:02:00Z"
    assert empty["samples"] == 0
    assert (empty["AC"], empty["Geyser"], empty["Overall"]) == (None, None, None)
    assert (empty["ac_kwh"], empty["geyser_kwh"], empty["overall_kwh"]) == (None, None, None)
    assert empty["status"] == {"AC": "Red", "Geyser": "Red", "Overall": "Red"}
    assert empty["level"] == "Red"


def test_colours_come_from_the_streams_baseline() -> None:
    rig = Rig()
    feed(rig.history, "A", T0, T0 + 20 * 60)  # 20 normal minutes: a baseline past its warm-up
    rig.step()
    feed(rig.history, "A", T0 + 20 * 60, T0 + 21 * 60 + 1, overall_w=9000.0)  # an Overall far above normal
    rig.step()
    (doc,) = rig.publisher.docs(AGG_A)
    baseline = rig.baselines.get("A", 60)
    assert baseline is not None
    assert not baseline.stats.warming_up
    assert doc["Overall"] == 9.0
    assert doc["status"]["Overall"] == "Red"
    assert doc["status"]["AC"] == "Green"
    assert doc["level"] == "Red"


def test_each_interval_has_its_own_topic_and_cursor() -> None:
    rig = Rig({"FLEET_AGG_INTERVALS": "60,300"})
    rig.step()
    feed(rig.history, "A", T0, T0 + 601)
    rig.step()
    feed(rig.history, "A", T0 + 601, T0 + 901)
    rig.step()
    five = rig.publisher.docs("meters/A/agg/300s")
    assert [d["window_start"] for d in five] == ["2024-01-01T00:05:00Z", "2024-01-01T00:10:00Z"]
    assert five[0]["interval"] == 300
    assert five[0]["samples"] == 300
    minutes = rig.publisher.docs(AGG_A)
    assert [d["window_start"] for d in minutes][-1] == "2024-01-01T00:14:00Z"


def test_discovery_for_households_and_meters_heard_once_each(rig: Rig) -> None:
    rig.step()
    configs = [m for m in rig.publisher.messages if m.topic.startswith("homeassistant/")]
    assert [m.topic for m in configs] == ["homeassistant/device/A/config", "homeassistant/device/B/config"]
    assert all(m.retain and m.qos == 1 for m in configs)
    assert json.loads(configs[0].payload)["state_topic"] == AGG_A
    rig.publisher.clear()
    rig.step()
    assert rig.publisher.messages == []
    rig.history.set_status("Z", "online")  # a meter not configured, heard on the wire
    rig.step()
    assert rig.publisher.topics() == ["homeassistant/device/Z/config"]


def test_a_long_discovery_reports_its_progress(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    """Announcing thousands of meters takes seconds: a line every few seconds (here each publish takes a second of
    the republisher's clock), never one per meter; a quick one says nothing."""
    for n in range(1, 29):
        rig.history.set_status(f"A-{n:04d}", "online")
    ticks = iter(range(1000))
    slow = Republisher(
        rig.history,
        rig.baselines,
        rig.settings,
        rig.publisher,
        origin=ORIGIN,
        clock=lambda: float(next(ticks)),
    )
    with caplog.at_level("INFO", logger="bridge.republish.aggregates"):
        slow.step()
    assert len(rig.publisher.messages) == 30  # households A and B, and the 28 meters heard
    assert [r.getMessage() for r in caplog.records] == [
        f"discovery: published {n}/30 meters, 1.0/s" for n in (5, 10, 15, 20, 25, 30)
    ]
    caplog.clear()
    with caplog.at_level("INFO", logger="bridge.republish.aggregates"):
        rig.step()  # the rig's republisher: the real clock, 30 publishes in far less than 5 s
    assert caplog.records == []


def test_discovery_again_when_home_assistant_comes_online(rig: Rig) -> None:
    rig.step()
    rig.publisher.clear()
    rig.republisher.ha_status(b"offline")
    rig.step()
    assert rig.publisher.messages == []
    rig.republisher.ha_status(b"online")
    rig.step()
    assert rig.publisher.topics() == ["homeassistant/device/A/config", "homeassistant/device/B/config"]
    rig.publisher.clear()
    rig.connection = 2  # a reconnect: the broker may have lost the retained configs
    rig.step()
    assert len(rig.publisher.messages) == 2
    rig.connection = None
    rig.republisher.request_discovery()
    rig.step()
    assert len(rig.publisher.messages) == 2  # waits for the connection
    rig.connection = 2
    rig.step()
    assert len(rig.publisher.messages) == 4


def test_routes_home_assistant_s_status_only_with_discovery() -> None:
    """What bridge.runtime routes from the subscriber to the republisher: ``<prefix>/status`` while discovery is on."""
    on = Rig({"FLEET_HA_PREFIX": "ha/test"}).republisher
    [(topic, handler)] = on.routes()
    assert topic == "ha/test/status"
    assert handler == on.ha_status
    assert Rig({"FLEET_HA_DISCOVERY": "false"}).republisher.routes() == []
    assert Rig(agg_intervals=()).republisher.routes() == []  # discovery needs an aggregate to read


def test_discovery_follows_the_prefix_and_first_interval() -> None:
    rig = Rig({"FLEET_HA_PREFIX": "ha/test", "FLEET_AGG_INTERVALS": "300,60"})
    rig.step()
    first = rig.publisher.messages[0]
    assert first.topic == "ha/test/device/A/config"
    assert json.loads(first.payload)["state_topic"] == "meters/A/agg/300s"


def test_no_discovery_when_disabled() -> None:
    rig = Rig({"FLEET_HA_DISCOVERY": "false"})
    rig.step()
    feed(rig.history, "A", T0, T0 + 121)
    rig.republisher.ha_status(b"online")
    rig.step()
    assert rig.publisher.topics() == [AGG_A]
    assert not rig.republisher.discovery


def test_no_discovery_without_an_aggregate_to_read() -> None:
    rig = Rig(agg_intervals=())
    rig.step()
    feed(rig.history, "A", T0, T0 + 121)
    rig.step()
    assert rig.publisher.messages == []


def test_only_aggregate_and_discovery_topics(rig: Rig) -> None:
    rig.step()
    feed(rig.history, "A", T0, T0 + 181)
    feed(rig.history, "B", T0, T0 + 181)
    rig.history.set_status("A", "online")
    rig.step()
    for topic in rig.publisher.topics():
        assert topic.endswith("/agg/60s") or topic.startswith("homeassistant/device/"), topic
        assert not topic.endswith(("/reading", "/status"))


def test_nothing_while_disconnected_then_everything() -> None:
    rig = Rig(connected=False)
    feed(rig.history, "A", T0, T0 + 1)
    rig.step()
    feed(rig.history, "A", T0 + 1, T0 + 121)
    assert rig.step() == 0
    assert rig.publisher.messages == []
    rig.connection = 1
    rig.step()  # first pass: A was already there, so it counts as heard once it moves on
    feed(rig.history, "A", T0 + 121, T0 + 181)
    rig.step()
    assert len(rig.publisher.docs("homeassistant/device/A/config")) == 1
    assert [d["window_start"] for d in rig.publisher.docs(AGG_A)] == ["2024-01-01T00:02:00Z"]


def test_a_refused_publish_is_counted_and_not_retried(rig: Rig) -> None:
    rig.publisher.accept = False
    rig.step()
    feed(rig.history, "A", T0, T0 + 61)
    rig.step()
    assert rig.republisher.failed == 5  # discovery of A and B, twice (not taken: tried again), and the window
    rig.publisher.accept = True
    rig.publisher.clear()
    feed(rig.history, "A", T0 + 61, T0 + 121)
    rig.step()
    assert [d["window_start"] for d in rig.publisher.docs(AGG_A)] == ["2024-01-01T00:01:00Z"]
    assert sorted(t for t in rig.publisher.topics() if t.startswith("homeassistant/")) == [
        "homeassistant/device/A/config",
        "homeassistant/device/B/config",
    ]  # discovery not yet accepted is tried again


def test_the_thread_survives_a_failing_pass_and_stops() -> None:
    rig = Rig()
    calls = 0
    second = threading.Event()

    def flaky(topic: str, payload: bytes, qos: int, retain: bool) -> bool:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("a bug in the publisher")
        second.set()
        return True

    rig.republisher.publish = flaky
    rig.republisher.start()
    try:
        assert second.wait(10), "no pass after the failing one"
    finally:
        rig.republisher.stop()
    assert rig.republisher._thread is not None
    assert not rig.republisher._thread.is_alive()
