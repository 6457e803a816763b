"""End to end on real processes: meters -> broker (amqtt and Mosquitto) -> bridge -> HTTP/SSE over a real socket."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime

import pytest

from config.households import CLASSIC
from config.wire import decode_reading, parse_ts
from tests.conftest import require_mosquitto
from tests.integration.conftest import Fleet
from tests.support.mqtt import READING_TOPICS, collecting, readings_in
from tests.support.procs import login
from tests.support.sse import SSEClient

pytestmark = pytest.mark.integration

SETUP_OK = "Streaming setup and stats calculation successful"


def _expected_levels(household: str, window_start: int) -> tuple[float, float]:
    """AC and Geyser kW of the classic schedule at the hour of ``window_start`` (UTC fleet)."""
    hour = datetime.fromtimestamp(window_start, UTC).hour
    template = CLASSIC[household]
    return (template.ac_kw if template.ac_on(hour) else 0.0, template.geyser_kw if template.geyser_on(hour) else 0.0)


def _check_window(doc: dict[str, object], household: str, interval: int) -> None:
    assert doc["household"] == household
    assert doc["interval"] == interval
    start, end = parse_ts(str(doc["window_start"])), parse_ts(str(doc["window_end"]))
    assert end - start == interval
    assert start % interval == 0  # aligned to (UTC) midnight
    ac, geyser = _expected_levels(household, start)
    assert doc["AC"] == ac
    assert doc["Geyser"] == geyser
    overall = doc["Overall"]
    assert isinstance(overall, float)
    assert 0.5 + ac + geyser + 0.1 <= overall <= 0.5 + ac + geyser + 1.0
    assert doc["samples"] == interval
    status = doc["status"]
    assert isinstance(status, dict)
    assert set(status) == {"AC", "Geyser", "Overall"}
    assert set(status.values()) <= {"Green", "Yellow", "Red"}
    assert doc["level"] in {"Green", "Yellow", "Red"}


def _setup(fleet: Fleet, household: str, interval: int, **extra: object) -> tuple[str, str]:
    status, body, headers = fleet.post_json("/stream_setup", {"household": household, "interval": interval, **extra})
    assert status == 200, body
    assert body["status"] == SETUP_OK
    stream_id = str(body["stream_id"])
    cookie = headers.get("Set-Cookie", "").split(";")[0]
    assert cookie == f"stream_id={stream_id}"
    return stream_id, cookie


def test_meters_publish_valid_readings_with_consecutive_seq(fleet: Fleet) -> None:
    """Within 10 s every household publishes readings that decode, with seq and ts each +1 per reading."""
    seen: dict[str, list[tuple[int, int]]] = {"A": [], "B": [], "C": []}
    with collecting(fleet.mqtt_port, READING_TOPICS) as sub:
        while min(len(v) for v in seen.values()) < 30:
            msg = sub.wait_for(lambda m: True, timeout=10)
            assert not msg.retain
            for reading in readings_in(msg):  # one reading, or a batch if a meter had to catch up
                seen[reading.meter].append((reading.seq, reading.ts))
    for meter, pairs in seen.items():
        seqs = [seq for seq, _ in pairs]
        stamps = [ts for _, ts in pairs]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), meter
        assert stamps == list(range(stamps[0], stamps[0] + len(stamps))), meter


def test_status_is_retained_online(fleet: Fleet) -> None:
    """A late subscriber gets each meter's retained ``online``."""
    with collecting(fleet.mqtt_port, ["meters/+/status"]) as sub:
        got = {}
        while len(got) < 3:
            msg = sub.wait_for(lambda m: m.retain, timeout=10)
            got[msg.topic] = msg.payload
    assert got == {f"meters/{m}/status": b"online" for m in "ABC"}


def test_stream_a_5s_matches_classic_schedule(fleet: Fleet) -> None:
    """Setup A at 5 s, then one valid JSON event per 5 s window, consecutive, ids = window ends, values on schedule."""
    stream_id, _ = _setup(fleet, "a", 5)
    client = SSEClient(fleet.http_port, f"/stream_data?stream={stream_id}")
    try:
        assert client.status == 200
        assert client.headers["Content-Type"].startswith("text/event-stream")
        assert client.headers["Cache-Control"] == "no-cache"
        first = client.next_event()
        assert first.retry is not None
        assert first.data == ""
        events = [client.next_data_event() for _ in range(12)]
    finally:
        client.close()
    docs = [event.json() for event in events]
    for event, doc in zip(events, docs, strict=True):
        _check_window(doc, "A", 5)
        assert event.id == str(parse_ts(str(doc["window_end"])))
    starts = [parse_ts(str(doc["window_start"])) for doc in docs]
    assert starts == list(range(starts[0], starts[0] + 5 * len(starts), 5))


def test_two_clients_get_only_their_own_stream(fleet: Fleet) -> None:
    """Concurrent streams of different households and intervals, and a third setup, do not disturb each other."""
    _, cookie_a = _setup(fleet, "A", 5)
    id_c, _ = _setup(fleet, "C", 15)
    client_a = SSEClient(fleet.http_port, "/stream_data", headers={"Cookie": cookie_a})
    client_c = SSEClient(fleet.http_port, f"/stream_data?stream={id_c}")
    try:
        for _ in range(3):
            _check_window(client_a.next_data_event().json(), "A", 5)
            _check_window(client_c.next_data_event().json(), "C", 15)
        _setup(fleet, "B", 30)  # someone else's setup: the open streams must not change
        for _ in range(3):
            _check_window(client_a.next_data_event().json(), "A", 5)
            _check_window(client_c.next_data_event().json(), "C", 15)
    finally:
        client_a.close()
        client_c.close()


def test_latest_setup_is_used_without_selector(fleet: Fleet) -> None:
    """A client with no cookie and no ?stream= gets the most recent setup, as the original did."""
    _setup(fleet, "B", 10)
    client = SSEClient(fleet.http_port, "/stream_data")
    try:
        _check_window(client.next_data_event().json(), "B", 10)
    finally:
        client.close()


def test_legacy_format_is_valid_json_on_both_sides(fleet: Fleet) -> None:
    """``?format=legacy`` keeps the original line, ``{...} status: {...}``, with both halves valid JSON."""
    stream_id, _ = _setup(fleet, "A", 5)
    client = SSEClient(fleet.http_port, f"/stream_data?stream={stream_id}&format=legacy")
    try:
        event = client.next_data_event()
    finally:
        client.close()
    values_text, marker, status_text = event.data.partition(" status: ")
    assert marker
    values, status = json.loads(values_text), json.loads(status_text)
    assert set(values) == set(status) == {"AC", "Geyser", "Overall"}
    assert set(status.values()) <= {"Green", "Yellow", "Red"}


def test_resume_with_last_event_id(fleet: Fleet) -> None:
    """Reconnecting with Last-Event-ID continues exactly after that window: no gap, no duplicate."""
    stream_id, _ = _setup(fleet, "C", 5)
    client = SSEClient(fleet.http_port, f"/stream_data?stream={stream_id}")
    try:
        seen = [client.next_data_event() for _ in range(3)]
    finally:
        client.close()
    resumed = SSEClient(fleet.http_port, f"/stream_data?stream={stream_id}", headers={"Last-Event-ID": str(seen[1].id)})
    try:
        again = resumed.next_data_event()
    finally:
        resumed.close()
    assert again.id == seen[2].id
    assert again.json()["window_start"] == seen[2].json()["window_start"]


def test_start_index_replays_from_history(fleet: Fleet) -> None:
    """start_index (seconds since simulated midnight) starts the stream at that window, from history."""
    start_index = 5 * 3600 + 59 * 60 + 30  # 05:59:30, in the past of the fleet started at 05:59:00
    stream_id, _ = _setup(fleet, "A", 15, start_index=start_index)
    client = SSEClient(fleet.http_port, f"/stream_data?stream={stream_id}")
    try:
        docs = [client.next_data_event().json() for _ in range(4)]
    finally:
        client.close()
    first = parse_ts(str(docs[0]["window_start"]))
    assert datetime.fromtimestamp(first, UTC).strftime("%H:%M:%S") == "05:59:30"
    for doc in docs:
        _check_window(doc, "A", 15)
    # 06:00 is inside the replay: A's geyser goes from 0 to 3 kW exactly there.
    assert [doc["Geyser"] for doc in docs] == [0.0, 0.0, 3.0, 3.0]


def test_qstats_has_original_shape_and_no_null(fleet: Fleet) -> None:
    """Quick stats keep the original keys per appliance and never contain null."""
    stream_id, _ = _setup(fleet, "B", 5)
    status, doc, _ = fleet.get_json(f"/stream_qstats?stream={stream_id}")
    assert status == 200, doc
    for key in ("25p", "75p", "median", "best_distribution", "rt_critical_value_0.01"):
        block = doc[key]
        assert isinstance(block, dict)
        assert set(block) == {"AC", "Geyser", "Overall"}
        assert all(value is not None for value in block.values())
    critical, p75 = doc["rt_critical_value_0.01"], doc["75p"]
    assert isinstance(critical, dict)
    assert isinstance(p75, dict)
    assert all(critical[k] >= p75[k] for k in critical)
    assert json.dumps(doc).count("null") == 0


def test_heartbeat_when_a_household_is_silent(fleet: Fleet) -> None:
    """A known household with no meter running (D) gives a stream that only sends heartbeats, and stays open."""
    stream_id, _ = _setup(fleet, "D", 5)
    client = SSEClient(fleet.http_port, f"/stream_data?stream={stream_id}", timeout=20)
    try:
        client.next_event()  # retry
        beat = client.next_event(include_comments=True)
    finally:
        client.close()
    assert beat.data == ""
    assert any(comment.startswith("heartbeat") for comment in beat.comments)


def test_garbage_on_mqtt_is_counted_and_streams_continue(fleet: Fleet) -> None:
    """Bad messages are rejected with a reason; the bridge keeps streaming valid windows."""
    import paho.mqtt.publish as publish

    garbage = [
        ("meters/D/reading", b"not json"),
        ("meters/D/reading", b"\xff\xfe"),
        ("meters/D/reading", b'{"meter": "B"}'),
        ("meters/Z/reading", json.dumps({"meter": "Z", "seq": 1}).encode()),
        ("meters/D/status", b"maybe"),
    ]
    # Each meter may publish only under its own meters/<id>/, and only as its own client id meter-<id>: D (known,
    # not running) and Z, so that no running meter is thrown off.
    for meter in ("D", "Z"):
        mine = [{"topic": t, "payload": p, "qos": 1} for t, p in garbage if t.split("/")[1] == meter]
        publish.multiple(
            mine, hostname="127.0.0.1", port=fleet.mqtt_port, auth=login(meter), client_id=f"meter-{meter}"
        )
    stream_id, _ = _setup(fleet, "A", 5)
    client = SSEClient(fleet.http_port, f"/stream_data?stream={stream_id}")
    try:
        for _ in range(3):
            _check_window(client.next_data_event().json(), "A", 5)
    finally:
        client.close()
    status, health, _ = fleet.get_json("/healthz")
    assert status == 200
    assert health["mqtt"] == "connected"
    messages = health["messages"]
    assert isinstance(messages, dict)
    rejected = messages["rejected"]
    assert isinstance(rejected, dict)
    for reason in ("bad_json", "bad_utf8", "missing_key", "bad_status"):
        assert rejected.get(reason, 0) >= 1, rejected


def test_bad_setup_is_json_400_and_changes_nothing(fleet: Fleet) -> None:
    """Invalid setups answer JSON 400 and leave the latest setup as it was."""
    _setup(fleet, "C", 30)
    for body in (
        {"household": "A+#", "interval": 5},
        {"household": "A", "interval": 2.7},
        ["A", 5],
        {"household": ["A"], "interval": 5},
        {"household": "A", "interval": 0},
    ):
        status, doc, headers = fleet.post_json("/stream_setup", body)
        assert status == 400, (body, doc)
        assert headers["Content-Type"].startswith("application/json")
        assert isinstance(doc["error"], str)
    client = SSEClient(fleet.http_port, "/stream_data")
    try:
        _check_window(client.next_data_event().json(), "C", 30)
    finally:
        client.close()


def test_mosquitto_sub_shows_valid_readings_from_a_b_c(fleet: Fleet) -> None:
    """What a person types (README): ``mosquitto_sub -u observer -P <password> -t 'meters/+/reading'`` shows valid
    readings of A, B and C within 10 s."""
    require_mosquitto()  # the mosquitto-clients package, also when the broker is amqtt
    result = subprocess.run(
        [
            "mosquitto_sub",
            "-h",
            "127.0.0.1",
            "-p",
            str(fleet.mqtt_port),
            "-u",
            "observer",
            "-P",
            login("observer")["password"],
            "-t",
            "meters/+/reading",
            "-v",
            "-C",
            "60",
            "-W",
            "10",
        ],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    meters = set()
    for line in result.stdout.splitlines():
        topic, _, payload = line.partition(" ")
        meters.add(decode_reading(topic, payload.encode()).meter)
    assert meters == {"A", "B", "C"}


def test_three_clients_with_different_households_intervals_and_start_index(fleet: Fleet) -> None:
    """At the same time: A live at 5 s, B from 05:59:30 at 15 s (paced), C from 05:59:00 at 30 s all at once."""
    id_a, _ = _setup(fleet, "A", 5)
    id_b, _ = _setup(fleet, "B", 15, start_index=5 * 3600 + 59 * 60 + 30)
    id_c, _ = _setup(fleet, "C", 30, start_index=5 * 3600 + 59 * 60, pace="none")
    clients = {
        "A": SSEClient(fleet.http_port, f"/stream_data?stream={id_a}"),
        "B": SSEClient(fleet.http_port, f"/stream_data?stream={id_b}"),
        "C": SSEClient(fleet.http_port, f"/stream_data?stream={id_c}"),
    }
    got: dict[str, list[dict[str, object]]] = {k: [] for k in clients}
    try:
        for _ in range(4):
            for household, client in clients.items():
                got[household].append(client.next_data_event().json())
    finally:
        for client in clients.values():
            client.close()
    for household, interval in (("A", 5), ("B", 15), ("C", 30)):
        docs = got[household]
        for doc in docs:
            _check_window(doc, household, interval)
        starts = [parse_ts(str(doc["window_start"])) for doc in docs]
        assert starts == list(range(starts[0], starts[0] + interval * len(starts), interval)), household
    assert str(got["B"][0]["window_start"]).endswith("05:59:30Z")
    assert str(got["C"][0]["window_start"]).endswith("05:59:00Z")
