"""bridge.http.metrics: /metrics in the Prometheus text format, read from the app's live state at scrape time."""

from __future__ import annotations

import threading
from pathlib import Path

import greenlet
import prometheus_client
import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bridge.http.metrics import CONTENT_TYPE, REGISTRY, BridgeCollector
from bridge.http.state import Telemetry
from bridge.ingest.health import DEAD_AFTER_S
from bridge.ingest.history import History
from bridge.ingest.messages import Ingest
from bridge.ingest.sequence import MeterClock
from bridge.ingest.store import QUEUE_MAX, ReadingStore
from bridge.ingest.subscriber import Subscriber
from bridge.services.state import BridgeState
from config.settings import DEFAULT_BRIDGE_ID, BrokerAddress, load_settings
from config.topics import probe_topic, reading_topic
from config.wire import REASONS, Reading, encode_reading
from tests.support.bridgeapp import app_state, memory_app, state
from tests.support.subscriber import Wire, deliver

T0 = 1_704_067_200  # 2024-01-01T00:00:00Z
LINUX = Path("/proc/self/stat").exists()
# prometheus_client's ProcessCollector reads /proc/self: elsewhere these families are simply absent
PROCESS_FAMILIES = (
    {
        "process_virtual_memory_bytes": "gauge",
        "process_resident_memory_bytes": "gauge",
        "process_start_time_seconds": "gauge",
        "process_cpu_seconds": "counter",  # the parser names a counter family without _total
        "process_open_fds": "gauge",
        "process_max_fds": "gauge",
    }
    if LINUX
    else {}
)


def feed(ingest: Ingest, meter: str, seconds: range) -> None:
    for i in seconds:
        reading = Reading(meter, i, T0 + i, 1000.0, 0.0, 2000.0, 0.0, 0.0, 0.0)
        ingest.handle(reading_topic(meter), encode_reading(reading))


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, keyed by name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(client: FlaskClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    return samples(response.get_data(as_text=True))


def test_text_format_with_its_content_type(client: FlaskClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"
    assert "no-store" in response.headers["Cache-Control"]
    families = {family.name: family.type for family in text_string_to_metric_families(response.get_data(as_text=True))}
    process = {name: families.pop(name) for name in list(families) if name.startswith("process_")}
    assert process == PROCESS_FAMILIES
    assert families == {
        "fleet_bridge_readings_received": "counter",
        "fleet_bridge_readings_duplicate": "counter",
        "fleet_bridge_messages_rejected": "counter",
        "fleet_bridge_sse_windows_emitted": "counter",
        "fleet_bridge_sse_clients": "gauge",
        "fleet_bridge_sse_resets": "counter",
        "fleet_bridge_sse_revisions_emitted": "counter",
        "fleet_bridge_sse_revisions_skipped": "counter",
        "fleet_bridge_meters_known": "gauge",
        "fleet_bridge_mqtt_connected": "gauge",
        "fleet_bridge_mqtt_last_message_age_seconds": "gauge",
        "fleet_bridge_mqtt_forced_reconnects": "counter",
        "fleet_bridge_mqtt_probes_received": "counter",
        "fleet_bridge_messages_foreign": "counter",
        "fleet_bridge_store_dropped": "counter",
        "fleet_bridge_ingest_queue_depth": "gauge",
        "fleet_bridge_ingest_queue_limit": "gauge",
        "fleet_bridge_ingest_lag_seconds": "gauge",
        "fleet_bridge_store_failed": "counter",
        "fleet_bridge_meter_last_reading_timestamp_seconds": "gauge",
        "fleet_bridge_meter_watermark_lag_seconds": "gauge",
        "fleet_bridge_meter_ingest_lag_seconds": "gauge",
        "fleet_bridge_meter_gaps_open": "gauge",
        "fleet_bridge_meter_gaps_repaired": "counter",
        "fleet_bridge_meter_last_seq": "gauge",
        "fleet_bridge_meter_readings_received": "counter",
        "fleet_bridge_meter_readings_duplicate": "counter",
        "fleet_bridge_meter_seq_restarts": "counter",
        "fleet_bridge_meter_replay_requested": "counter",
        "fleet_bridge_meter_messages_rejected": "counter",
        "fleet_bridge_threads": "gauge",
        "fleet_bridge_os_threads": "gauge",
        "fleet_bridge_greenlets": "gauge",
    }


def test_fresh_app_counts_nothing(client: FlaskClient) -> None:
    values = scrape(client)
    assert values[("fleet_bridge_readings_received_total", ())] == 0
    assert values[("fleet_bridge_mqtt_connected", ())] == 0
    assert values[("fleet_bridge_mqtt_forced_reconnects_total", ())] == 0
    assert values[("fleet_bridge_messages_foreign_total", ())] == 0
    assert values[("fleet_bridge_store_dropped_total", ())] == 0  # every reading dropped anywhere has a counter
    assert ("fleet_bridge_mqtt_last_message_age_seconds", ()) not in values  # no MQTT, no age
    assert values[("fleet_bridge_meters_known", ())] == 0
    # every reason is a series from the start, so rate() and alerts work before the first reject
    for reason in (*REASONS, "internal"):
        assert values[("fleet_bridge_messages_rejected_total", (("reason", reason),))] == 0


def test_counters_follow_ingest_and_telemetry(app: Flask, client: FlaskClient) -> None:
    fleet = state(app)
    feed(fleet.ingest, "A", range(10))
    feed(fleet.ingest, "A", range(8, 10))  # redelivered
    fleet.ingest.handle("meters/A/reading", b"garbage")
    fleet.ingest.handle("nonsense", b"{}")
    telemetry = app_state(app).telemetry
    telemetry.client_opened()
    telemetry.client_opened()
    telemetry.client_closed()
    telemetry.window_sent()
    telemetry.reset_sent()
    telemetry.revision_sent()
    telemetry.revisions_skipped_by(3)
    values = scrape(client)
    assert values[("fleet_bridge_readings_received_total", ())] == 10
    assert values[("fleet_bridge_readings_duplicate_total", ())] == 2
    assert values[("fleet_bridge_messages_rejected_total", (("reason", "bad_json"),))] == 1
    assert values[("fleet_bridge_messages_rejected_total", (("reason", "bad_topic"),))] == 1
    assert values[("fleet_bridge_sse_clients", ())] == 1
    assert values[("fleet_bridge_sse_windows_emitted_total", ())] == 1
    assert values[("fleet_bridge_sse_resets_total", ())] == 1
    assert values[("fleet_bridge_sse_revisions_emitted_total", ())] == 1
    assert values[("fleet_bridge_sse_revisions_skipped_total", ())] == 3
    assert values[("fleet_bridge_meters_known", ())] == 1
    feed(fleet.ingest, "A", range(10, 15))  # read at scrape time: nothing to update by hand
    assert scrape(client)[("fleet_bridge_readings_received_total", ())] == 15


def test_lags_per_meter(app: Flask) -> None:
    fleet = state(app)
    now = [1000.0]
    fleet.ingest = Ingest(fleet.history, clock=lambda: now[0])
    feed(fleet.ingest, "A", range(20))  # A's newest reading is T0 + 19
    now[0] = 1010.0
    feed(fleet.ingest, "B", range(5))  # B is 15 simulated seconds behind A, and heard 10 wall seconds later
    now[0] = 1012.5
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BridgeCollector(fleet, Telemetry(), clock=lambda: now[0]))
    values = samples(generate_latest(registry).decode())
    meter = "fleet_bridge_meter_{}"
    assert values[(meter.format("last_reading_timestamp_seconds"), (("meter", "A"),))] == T0 + 19
    assert values[(meter.format("last_reading_timestamp_seconds"), (("meter", "B"),))] == T0 + 4
    assert values[(meter.format("watermark_lag_seconds"), (("meter", "A"),))] == 0
    assert values[(meter.format("watermark_lag_seconds"), (("meter", "B"),))] == 15
    assert values[(meter.format("ingest_lag_seconds"), (("meter", "A"),))] == 12.5
    assert values[(meter.format("ingest_lag_seconds"), (("meter", "B"),))] == 2.5


def _collect(fleet: BridgeState) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BridgeCollector(fleet, Telemetry()))
    return samples(generate_latest(registry).decode())


def test_ingest_lag_is_how_far_the_freshest_live_meter_is_behind_its_own_clock(app: Flask) -> None:
    fleet = state(app)
    now = [1000.0]  # History's clock: when each reading arrives (monotonic seconds)
    fleet.history = History(3600, clock=lambda: now[0])
    fleet.ingest = Ingest(fleet.history)
    lag = ("fleet_bridge_ingest_lag_seconds", ())
    assert lag not in _collect(fleet)  # no reading yet: no sample
    feed(fleet.ingest, "A", range(20))  # A's seconds up to T0 + 19, all arriving at once: it is live
    assert _collect(fleet)[lag] == 0
    now[0] = 1005.0  # nothing for 5 s: A's clock says T0 + 24, its newest second held ended at T0 + 20
    assert _collect(fleet)[lag] == 4
    feed(fleet.ingest, "B", range(5))  # B is live: not every meter is behind, so the bridge is not
    assert _collect(fleet)[lag] == 0
    fleet.history.set_status("B", "offline")  # an offline meter says nothing about the bridge
    assert _collect(fleet)[lag] == 4
    now[0] = 1010.0
    feed(fleet.ingest, "A", range(20, 23))  # A's next seconds come 7 s late: the bridge is behind, and says so
    assert _collect(fleet)[lag] == 6  # A's clock: T0 + 29; newest held ends at T0 + 23


def test_ingest_lag_is_in_wall_seconds_at_any_speed() -> None:
    clock = MeterClock(speed=60.0)
    clock.anchor(T0 + 599, wall=100.0)
    assert clock.behind_s(T0 + 599, wall=100.0) == 0
    assert clock.behind_s(T0 + 599, wall=110.0) == pytest.approx((600 - 1) / 60)  # 10 s: 600 simulated, one held
    assert MeterClock(speed=1.0).behind_s(T0, wall=5.0) == 0  # before any reading: nothing is known to be late


def test_ingest_queue_depth_counts_what_waits_for_the_disk(app: Flask, tmp_path: Path) -> None:
    fleet = state(app)
    store = ReadingStore(tmp_path, retention_s=86_400)
    writing, release = threading.Event(), threading.Event()
    write = store._write

    def slow_write(batch: list[Reading]) -> None:  # a disk that has fallen behind: the writer waits for the test
        writing.set()
        release.wait(30)
        write(batch)

    store._write = slow_write  # type: ignore[method-assign]
    fleet.history = History(3600, store=store)
    fleet.ingest = Ingest(fleet.history)
    depth, limit = (
        ("fleet_bridge_ingest_queue_depth", (("stage", "store"),)),
        ("fleet_bridge_ingest_queue_limit", (("stage", "store"),)),
    )
    try:
        assert _collect(fleet)[depth] == 0
        feed(fleet.ingest, "A", range(1))
        assert writing.wait(30)  # the writer took the first reading and is stuck writing it
        feed(fleet.ingest, "A", range(1, 50))
        values = _collect(fleet)
        assert values[depth] == 50  # one being written, 49 queued: every one counted until it is on disk
        assert values[limit] == QUEUE_MAX
        assert values[("fleet_bridge_readings_received_total", ())] == 50  # and every one is in memory already
    finally:
        release.set()
    assert store.flush(30)
    assert _collect(fleet)[depth] == 0
    assert store.written == 50
    store.close()


@pytest.mark.skipif(not LINUX, reason="process gauges read /proc/self")
def test_process_gauges_count_this_process(client: FlaskClient) -> None:
    greenlet.getcurrent()  # this thread's main greenlet exists from here on
    before = scrape(client)
    assert before[("fleet_bridge_threads", ())] == threading.active_count()
    assert before[("fleet_bridge_os_threads", ())] == len(list(Path("/proc/self/task").iterdir()))
    assert before[("process_resident_memory_bytes", ())] > 1_000_000
    assert before[("process_open_fds", ())] > 0
    waiting = [greenlet.greenlet(lambda: None) for _ in range(3)]  # not started yet: not finished either
    assert scrape(client)[("fleet_bridge_greenlets", ())] == before[("fleet_bridge_greenlets", ())] + 3
    for g in waiting:
        g.switch()  # runs to its end: dead
    assert scrape(client)[("fleet_bridge_greenlets", ())] == before[("fleet_bridge_greenlets", ())]


def test_each_app_has_its_own_registry_and_none_is_global() -> None:
    first = memory_app(load_settings({}))
    second = memory_app(load_settings({}))
    assert REGISTRY.get(first) is not REGISTRY.get(second)
    feed(state(first).ingest, "A", range(3))
    assert scrape(first.test_client())[("fleet_bridge_readings_received_total", ())] == 3
    assert scrape(second.test_client())[("fleet_bridge_readings_received_total", ())] == 0
    assert b"fleet_bridge" not in generate_latest(prometheus_client.REGISTRY)


def test_only_get(client: FlaskClient) -> None:
    response = client.post("/metrics")
    assert response.status_code == 405
    assert response.is_json
    assert "GET" in response.headers["Allow"]


def test_per_meter_figures_are_those_of_api_meters(app: Flask, client: FlaskClient) -> None:
    fleet = state(app)
    feed(fleet.ingest, "A", range(10))
    feed(fleet.ingest, "A", range(3))  # three duplicates
    feed(fleet.ingest, "A", range(15, 20))  # seqs 10..14 missing
    fleet.ingest.handle("meters/A/reading", b"{not json")
    fleet.replays_requested["A"] += 5
    values = scrape(client)
    api = client.get("/api/meters").get_json()["meters"]["A"]
    a = (("meter", "A"),)
    assert values[("fleet_bridge_meter_last_seq", a)] == api["last_seq"] == 19
    assert values[("fleet_bridge_meter_readings_received_total", a)] == api["received"] == 15
    assert values[("fleet_bridge_meter_readings_duplicate_total", a)] == api["duplicates"] == 3
    assert values[("fleet_bridge_meter_gaps_open", a)] == api["gaps_open"] == 5
    assert values[("fleet_bridge_meter_seq_restarts_total", a)] == api["seq_restarts"] == 0
    assert values[("fleet_bridge_meter_replay_requested_total", a)] == api["replay_requested"] == 5
    assert values[("fleet_bridge_meter_messages_rejected_total", (("meter", "A"), ("reason", "bad_json")))] == 1
    assert api["rejected"] == {"bad_json": 1}


def test_mqtt_session_figures_follow_the_subscriber(app: Flask, client: FlaskClient) -> None:
    """Connected but silent past the watchdog's bound: mqtt_connected says 0 (a dead session is no
    connection); the age of the last message and the forced reconnects come from the subscriber."""
    now = [1000.0]
    subscriber = Subscriber(BrokerAddress("127.0.0.1", 1883, "u", "p"), state(app).ingest, clock=lambda: now[0])
    state(app).subscriber = subscriber
    Wire(subscriber)  # takes what it writes, sends nothing
    subscriber._on_connack(0, False)
    deliver(subscriber, probe_topic(DEFAULT_BRIDGE_ID).encode(), b"")
    now[0] += 2.5
    values = scrape(client)
    assert values[("fleet_bridge_mqtt_connected", ())] == 1
    assert values[("fleet_bridge_mqtt_last_message_age_seconds", ())] == 2.5
    assert values[("fleet_bridge_mqtt_probes_received_total", ())] == 1
    now[0] += DEAD_AFTER_S
    values = scrape(client)
    assert values[("fleet_bridge_mqtt_connected", ())] == 0  # known dead
    subscriber._watch_pass()  # forces a reconnect (no socket here: nothing to shut down)
    assert scrape(client)[("fleet_bridge_mqtt_forced_reconnects_total", ())] == 1
