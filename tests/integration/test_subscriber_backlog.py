"""The bridge's subscriber (``config.mqtt``, PUBACKs batched per chunk) against Mosquitto: a persistent session's QoS 1
backlog is taken in full, each reading once, and every message is acknowledged: a second run of the same session gets
none of them again.

Mosquitto only: amqtt 0.12 delivered none of such a backlog to the returning session, with paho's subscriber as with
this one (tried on 2026-12-06), so there is nothing to drain there.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from bridge.ingest.history import History
from bridge.ingest.messages import Ingest
from bridge.ingest.subscriber import Subscriber
from config.credentials import meter_client_id
from config.secret import load_or_create_secret
from config.settings import BrokerAddress
from config.topics import reading_topic
from config.wire import Reading, encode_reading
from tests.conftest import require_mosquitto
from tests.support.procs import LOOPBACK, Proc, fleet_secret, login, running, start_broker, wait_until

pytestmark = pytest.mark.integration

T0 = 1_748_736_000
BACKLOG = 2_000  # twenty times Mosquitto's in-flight window: many chunks, many batched acknowledgements
CLIENT_ID = "bridge-backlog"


def _subscriber(port: int) -> Subscriber:
    broker = BrokerAddress(LOOPBACK, port, secret=load_or_create_secret(fleet_secret()))
    return Subscriber(broker, Ingest(History(7200)), CLIENT_ID)


def _publish_backlog(port: int, meter: str, count: int) -> None:
    """``count`` consecutive readings of ``meter`` at QoS 1, each acknowledged by the broker."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=meter_client_id(meter), protocol=mqtt.MQTTv311)
    client.username_pw_set(**login(meter))
    client.max_inflight_messages_set(100)
    client.connect(LOOPBACK, port, 30)
    client.loop_start()
    try:
        infos = [
            client.publish(
                reading_topic(meter),
                encode_reading(Reading(meter, i + 1, T0 + i, 100.0, 0.0, 200.0, 0.0, 0.0, 0.0)),
                qos=1,
            )
            for i in range(count)
        ]
        for info in infos:
            info.wait_for_publish(timeout=30)
            assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()
        client._reset_sockets()  # paho 2.2 leaves its wake-up sockets to the garbage collector, which warns


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Proc]:
    require_mosquitto()
    proc = start_broker("mosquitto", tmp_path / "logs", mosquitto_lines=["max_inflight_messages 100"])
    with running(proc):
        yield proc


@pytest.mark.mosquitto
def test_a_backlog_is_taken_once_and_acknowledged(mosquitto: Proc) -> None:
    port = mosquitto.port or 0
    first = _subscriber(port)
    first.start()  # the session and its subscriptions
    try:
        wait_until(lambda: first.alive() and first.last_suback_s is not None, 30, "the session subscribed")
    finally:
        first.stop()
    _publish_backlog(port, "A", BACKLOG)  # queued for the session while it is away

    drain = _subscriber(port)
    drain.start()
    try:
        wait_until(lambda: drain.ingest.counters()["accepted"] == BACKLOG, 60, f"{BACKLOG} readings taken")
        assert drain.connection() == 1
    finally:
        drain.stop()
    assert drain.ingest.counters() == {"accepted": BACKLOG, "duplicates": 0, "rejected": {}}
    assert drain.ingest.history.watermark("A") == T0 + BACKLOG

    again = _subscriber(port)  # the same session: whatever was not acknowledged would come again now
    again.start()
    try:
        probes = again.probes_received
        wait_until(lambda: again.probes_received > probes + 1, 30, "the session delivers (its probes come back)")
    finally:
        again.stop()
    assert again.ingest.counters() == {"accepted": 0, "duplicates": 0, "rejected": {}}
