"""A reading that arrives after its window was sent corrects it, over real sockets on both brokers: the SSE stream gets
``event: revision`` with the corrected window and no id, then carries on with its next window; statistics and
``/metrics`` follow. The readings are published by hand with paho (no simulator), so the late one is exactly the one
we hold back."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from config.topics import READING_QOS, reading_topic
from config.wire import Reading, encode_reading
from tests.support.procs import LOOPBACK, Proc, http_get, login, running, start_bridge
from tests.support.sse import Event, SSEClient

pytestmark = pytest.mark.integration

T0 = 1_704_067_200  # 2024-01-01T00:00:00Z: event time, whatever the wall clock says
LATE = T0 + 7  # held back: window [T0+5, T0+10) goes out with 4 seconds, then is revised with 5
WATTS = 1000.0
LATE_WATTS = 6000.0


def _reading(ts: int, watts: float = WATTS) -> Reading:
    i = ts - T0
    return Reading("A", i, ts, 0.0, 0.0, watts, 0.0, 0.0, round(i / 3600, 4))


@contextmanager
def _publisher(port: int) -> Iterator[Callable[[Reading], None]]:
    """Publish readings as meter A would (QoS 1), each acknowledged by the broker before the call returns."""
    connected = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="meter-A", protocol=mqtt.MQTTv311)
    auth = login("A")  # meter A's own credentials: it may publish only on its topics
    client.username_pw_set(auth["username"], auth["password"])
    client.on_connect = lambda c, u, f, rc, p: connected.set() if not rc.is_failure else None
    client.connect(LOOPBACK, port, 30)
    client.loop_start()
    try:
        assert connected.wait(10), "publisher not connected within 10 s"

        def publish(reading: Reading) -> None:
            info = client.publish(reading_topic(reading.meter), encode_reading(reading), qos=READING_QOS)
            info.wait_for_publish(10)
            assert info.is_published(), f"reading {reading.ts} not acknowledged"

        yield publish
    finally:
        client.disconnect()
        client.loop_stop()
        client._reset_sockets()  # paho 2.2 leaves its wake-up socket pair to the garbage collector otherwise


def _until(check: Callable[[], bool], seconds: float) -> bool:
    tick = threading.Event()
    for _ in range(int(seconds / 0.1)):  # bounded
        if check():
            return True
        tick.wait(0.1)
    return check()


def _received(port: int) -> int:
    status, body = http_get(port, "/api/meters")
    return int(json.loads(body)["meters"]["A"]["received"]) if status == 200 else 0


def _qstats_samples(port: int) -> int | None:
    status, body = http_get(port, "/stream_qstats?household=A&interval=5")
    return int(json.loads(body)["samples"]) if status == 200 else None


def _next_window_or_revision(client: SSEClient) -> Event:
    while True:
        event = client.next_data_event()
        if event.event in (None, "revision"):
            return event


def test_a_late_reading_revises_the_window_already_sent(broker: Proc, tmp_path: Path) -> None:
    port = broker.port or 0
    bridge = start_bridge(port, tmp_path, env={"FLEET_HOUSEHOLDS": "A"})
    http = bridge.port or 0
    with running(bridge), _publisher(port) as publish:

        def heard() -> bool:  # the bridge subscribes after it serves HTTP: repeat the first reading until it has it
            publish(_reading(T0))
            return _received(http) > 0

        assert _until(heard, 15), bridge.log()[-2000:]
        for ts in range(T0 + 1, T0 + 21):  # watermark T0+21: windows up to [T0+15, T0+20) are final (grace 0 or 1 s)
            if ts != LATE:
                publish(_reading(ts))
        assert _until(lambda: _received(http) == 20, 15), bridge.log()[-2000:]
        assert _qstats_samples(http) == 19  # computed at this first request, from every window [T0, T0+20)

        # A client that saw the window ending at T0 (Last-Event-ID): it gets [T0, T0+5) .. [T0+15, T0+20) from history.
        client = SSEClient(http, f"/stream_data?household=A&interval=5&pace=none&last_event_id={T0}")
        try:
            windows = [_next_window_or_revision(client) for _ in range(4)]
            assert [w.id for w in windows] == [str(T0 + 5 * k) for k in range(1, 5)]
            assert all(w.event is None for w in windows)
            gappy = windows[1].json()
            assert (gappy["samples"], gappy["Overall"]) == (4, 1.0)

            publish(_reading(LATE, LATE_WATTS))  # arrives after its window went out
            revision = _next_window_or_revision(client)
            assert revision.event == "revision"
            assert revision.id is None  # Last-Event-ID resumption is unaffected
            corrected = revision.json()
            assert set(corrected) == set(gappy)  # the window event's own format
            assert corrected["window_start"] == gappy["window_start"] == "2024-01-01T00:00:05Z"
            assert (corrected["samples"], corrected["Overall"]) == (5, 2.0)  # (4 x 1 kW + 6 kW) / 5
            # The watermark has not moved: only the late reading makes the statistics be recomputed.
            assert _until(lambda: _qstats_samples(http) == 20, 15)

            for ts in range(T0 + 21, T0 + 26):
                publish(_reading(ts))
            following = _next_window_or_revision(client)  # the stream carries on, ids as before
            assert (following.event, following.id) == (None, str(T0 + 25))
        finally:
            client.close()

        status, body = http_get(http, "/metrics")
        assert status == 200
        assert "fleet_bridge_sse_revisions_emitted_total 1.0" in body.decode()

        # A new client asking from the start gets the corrected window itself (never a stale cached rendering).
        again = SSEClient(http, f"/stream_data?household=A&interval=5&pace=none&last_event_id={T0}")
        try:
            _next_window_or_revision(again)
            second = _next_window_or_revision(again)
            assert second.id == str(T0 + 10)
            assert (second.json()["samples"], second.json()["Overall"]) == (5, 2.0)
        finally:
            again.close()
