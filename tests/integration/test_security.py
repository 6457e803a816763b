"""Authentication, per-user topic rules and TLS, on real brokers (the embedded amqtt and Mosquitto 2).

Non-delivery is proved with a marker: the forbidden messages are published (and acknowledged by the broker) first,
then a permitted marker; once the marker has arrived, anything the forbidden messages would have caused has arrived
too, so an empty list before the marker means they were never delivered.
"""

from __future__ import annotations

import json
import queue
import secrets
import socket
import ssl
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from config.credentials import SERVICE_USERS, bridge_client_id, meter_client_id
from config.secret import load_or_create_secret
from config.topics import BRIDGE_STATUS_SUBSCRIPTION, WHOLE_FLEET, bridge_status_topic, probe_topic
from config.wire import decode_reading
from tests.support.mqtt import Msg
from tests.support.procs import (
    LOOPBACK,
    TEST_METERS,
    Proc,
    clean_env,
    fleet_secret,
    free_port,
    login,
    mosquitto_auth,
    mosquitto_binary,
    mosquitto_test_config,
    python_module,
    running,
    start,
    start_bridge,
    start_broker,
    start_meters,
    wait_until,
)
from tests.support.tls import Pem, make_ca, make_server_cert

pytestmark = pytest.mark.integration

WAIT_S = 10.0
CONNECTED = "connected"


class Peer:
    """One MQTT client of these tests: it says exactly how its connection went, and queues what it receives."""

    def __init__(
        self,
        port: int,
        user: str | None,
        password: str | None = None,
        tls_ca: Path | None = None,
        client_id: str | None = None,
        clean_session: bool = True,
    ) -> None:
        self.port = port
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or own_client_id(user),
            protocol=mqtt.MQTTv311,
            clean_session=clean_session,
        )
        if user is not None:
            self.client.username_pw_set(user, login(user)["password"] if password is None else password)
        if tls_ca is not None:
            self.client.tls_set(ca_certs=str(tls_ca))
        self.messages: queue.Queue[Msg] = queue.Queue()
        self._outcomes: queue.Queue[str] = queue.Queue()
        self._subacks: queue.Queue[list[ReasonCode]] = queue.Queue()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda c, u, f, rc, p: self._outcomes.put(f"disconnected: {rc}")
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self._subacks.put(list(rcs))
        self.client.on_message = lambda c, u, m: self.messages.put(Msg(m.topic, bytes(m.payload), bool(m.retain)))

    def _on_connect(
        self, client: mqtt.Client, userdata: object, flags: object, reason: ReasonCode, props: Properties | None
    ) -> None:
        self._outcomes.put(f"refused: {reason}" if reason.is_failure else CONNECTED)

    def connect(self) -> str:
        """``connected``, ``refused: <reason>`` (CONNACK), ``disconnected: ...``, or ``failed: <error>`` (TCP/TLS)."""
        try:
            self.client.connect(LOOPBACK, self.port, 30)
        except (OSError, ssl.SSLError) as exc:
            return f"failed: {exc}"
        self.client.loop_start()
        try:
            return self._outcomes.get(timeout=WAIT_S)
        except queue.Empty:
            return "no answer"

    def subscribe(self, *topics: str) -> list[bool]:
        """Subscribe (QoS 1); whether the broker granted each filter."""
        self.client.subscribe([(topic, 1) for topic in topics])
        return [not code.is_failure for code in self._subacks.get(timeout=WAIT_S)]

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        """Publish at QoS 1 and wait for the broker's acknowledgement."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(timeout=WAIT_S)
        assert info.is_published(), f"no PUBACK for {topic}"

    def until(self, topic: str, payload: bytes) -> list[Msg]:
        """Every message received before the one on ``topic`` with ``payload`` (which must come within WAIT_S)."""
        before: list[Msg] = []
        deadline = time.monotonic() + WAIT_S
        while True:
            msg = self.messages.get(timeout=max(0.0, deadline - time.monotonic()))
            if (msg.topic, msg.payload) == (topic, payload):
                return before
            before.append(msg)

    def close(self) -> None:
        """Disconnect, stop the network thread and close every socket."""
        self.client.disconnect()
        self.client.loop_stop()
        self.client._reset_sockets()  # paho 2.2 leaves its wake-up socket pair to the garbage collector


def own_client_id(user: str | None) -> str:
    """A client id ``user`` may take: a meter's own ``meter-<id>``, a fresh ``bridge-...`` or ``<user>-...``."""
    if user is None:
        return f"security-{secrets.token_hex(3)}"
    if user not in SERVICE_USERS:
        return meter_client_id(user)
    return f"{user}-sec-{secrets.token_hex(3)}"


@contextmanager
def peer(port: int, user: str, tls_ca: Path | None = None) -> Iterator[Peer]:
    """A client logged in as ``user`` with its right password, connected, for a ``with`` block."""
    client = Peer(port, user, tls_ca=tls_ca)
    try:
        outcome = client.connect()
        assert outcome == CONNECTED, f"{user}: {outcome}"
        yield client
    finally:
        client.close()


def _attempt(
    port: int, user: str | None, password: str | None = None, tls_ca: Path | None = None, client_id: str | None = None
) -> str:
    client = Peer(port, user, password, tls_ca, client_id)
    try:
        return client.connect()
    finally:
        client.close()


# --- Authentication -----------------------------------------------------------------------------------------------


def test_anonymous_client_is_refused(broker: Proc) -> None:
    assert _attempt(broker.port or 0, None).startswith("refused")


@pytest.mark.parametrize(
    ("user", "password"),
    [
        ("A", "wrong"),
        ("A", login("B")["password"]),  # another meter's password
        ("bridge", login("observer")["password"]),
        ("observer", ""),
        ("mallory", login("A")["password"]),  # no such user
        ("E", login("E")["password"]),  # a valid meter id the broker was not told about
    ],
)
def test_wrong_password_or_unknown_user_is_refused(broker: Proc, user: str, password: str) -> None:
    assert _attempt(broker.port or 0, user, password).startswith("refused")


@pytest.mark.parametrize("user", ["A", "Z", "bridge", "homeassistant", "observer"])
def test_every_user_connects_with_its_password(broker: Proc, user: str) -> None:
    assert _attempt(broker.port or 0, user) == CONNECTED


# --- Client ids bound to users ------------------------------------------------------------------------------------


def _bridge_id() -> str:
    """The client id the bridge derives from the test run's secret (its default: no FLEET_BRIDGE_ID)."""
    return bridge_client_id(load_or_create_secret(fleet_secret()))


@pytest.mark.parametrize("client_id", ["meter-B", "BRIDGE", "bridge-x", "observer-x", "meter-A-2", "mosq-1", "A"])
def test_meter_login_takes_no_other_client_id(broker: Proc, client_id: str) -> None:
    """Meter A's right password with any id but ``meter-A`` (B's, the bridge's, a service prefix's, its own with a
    suffix, a free one) is refused at CONNECT."""
    client_id = _bridge_id() if client_id == "BRIDGE" else client_id
    assert _attempt(broker.port or 0, "A", client_id=client_id).startswith("refused"), client_id
    assert _attempt(broker.port or 0, "A", client_id="meter-A") == CONNECTED


@pytest.mark.parametrize(
    ("user", "client_id", "amqtt_outcome"),
    [
        ("bridge", "bridge-shard-0", CONNECTED),
        ("bridge", "fleet-bridge", "refused"),  # the bridge's ids all start with bridge-
        ("bridge", "meter-A", "refused"),
        ("observer", "observer-1", CONNECTED),
        ("observer", "mosq-Xy12", CONNECTED),  # mosquitto_sub's default id
        ("observer", "bridge-x", "refused"),
        ("observer", "meter-A", "refused"),
        ("homeassistant", "homeassistant-1", CONNECTED),
        ("homeassistant", "6LgXmA2WcW9Pb3Hd", CONNECTED),  # Home Assistant's default is random
        ("homeassistant", "observer-1", "refused"),
    ],
)
def test_service_users_client_ids(
    broker_kind: str, broker: Proc, user: str, client_id: str, amqtt_outcome: str
) -> None:
    """On amqtt service users keep to their own prefix (or none, but the bridge); on Mosquitto (dynamic security
    binds only exact ids) their logins are trusted with ids, and every one connects."""
    outcome = _attempt(broker.port or 0, user, client_id=client_id)
    expected = amqtt_outcome if broker_kind == "amqtt" else CONNECTED
    assert outcome.startswith(expected), (user, client_id, outcome)


def test_intruder_with_the_bridges_id_never_disconnects_the_bridge(broker_kind: str, tmp_path: Path) -> None:
    """A real bridge and a real meter run; logins with the bridge's client id (meter A's password, a wrong password,
    none) are refused before the broker touches the bridge's session: the bridge is never disconnected and A's
    readings keep arriving. The bridge's own login with that id does take the session over: the id was the bridge's."""
    broker = start_broker(broker_kind, tmp_path / "broker")
    port = broker.port or 0
    with running(broker):
        bridge = start_bridge(port, tmp_path / "bridge", env={"FLEET_HOUSEHOLDS": "A"})
        meters = start_meters(port, ["A"], tmp_path / "meters", speed=10)
        with running(bridge, meters):
            http = bridge.port or 0
            wait_until(lambda: _received(http, "A") > 0, 30, "readings of A at the bridge")
            for user, password in (("A", None), ("A", "wrong"), ("bridge", "wrong"), (None, None)):
                outcome = _attempt(port, user, password, client_id=_bridge_id())
                assert outcome.startswith("refused"), (user, password, outcome)
            before = _received(http, "A")
            wait_until(lambda: _received(http, "A") >= before + 10, 30, "ten more readings of A")
            assert _health(http)["mqtt"] == CONNECTED
            assert "bridge disconnected" not in bridge.log(), bridge.log()[-3000:]
            assert bridge.log().count("bridge connected to") == 1, bridge.log()[-3000:]
            assert not _took_over(broker), broker.log()[-3000:]
            # The control: the bridge's own login with that id does take the session over (the broker says so).
            control = Peer(port, "bridge", client_id=_bridge_id(), clean_session=False)  # as the bridge connects
            try:
                assert control.connect() == CONNECTED
            finally:
                control.close()
            wait_until(lambda: _took_over(broker), 30, "the broker handing the bridge's session to its own login")


def _took_over(broker: Proc) -> bool:
    """Whether the broker's log tells of a client thrown off by a newcomer with its id (amqtt at WARNING, Mosquitto
    at NOTICE)."""
    log = broker.log()
    return "performing take-over" in log or "already connected, closing old connection" in log


def _received(http_port: int, meter: str) -> int:
    with urllib.request.urlopen(f"http://{LOOPBACK}:{http_port}/api/meters", timeout=5) as response:
        doc = json.loads(response.read())
    counters = doc["meters"].get(meter, {})
    return int(counters.get("received") or 0)


# --- Topic rules ------------------------------------------------------------------------------------------------


def test_meter_publishes_only_under_its_own_topics(broker: Proc) -> None:
    """Meter A forging B's reading, status or commands, or the bridge's aggregates or discovery: nothing arrives."""
    port = broker.port or 0
    with peer(port, "bridge") as bridge, peer(port, "A") as meter_a:
        assert bridge.subscribe("meters/#", "homeassistant/#") == [True, True]
        forged = [
            ("meters/B/reading", False),
            ("meters/B/readings", False),
            ("meters/B/status", True),
            ("meters/B/cmd/replay", False),
            ("meters/A/agg/60s", True),
            ("meters/A/cmd/replay", False),
            ("homeassistant/device/A/config", True),
        ]
        for topic, retain in forged:
            meter_a.publish(topic, b"forged", retain=retain)
        meter_a.publish("meters/A/reading", b"marker")
        assert bridge.until("meters/A/reading", b"marker") == []
    with peer(port, "observer") as late:  # and nothing forged was retained
        assert late.subscribe("meters/#", "homeassistant/#") == [True, True]
        with peer(port, "A") as meter_a:
            meter_a.publish("meters/A/status", b"marker", retain=True)
        assert late.until("meters/A/status", b"marker") == []


def test_meter_reads_only_its_own_commands(broker: Proc) -> None:
    """Meter A subscribed to ``meters/#`` gets nothing of B's (readings, status, commands, aggregates)."""
    port = broker.port or 0
    with peer(port, "A") as meter_a, peer(port, "B") as meter_b, peer(port, "bridge") as bridge:
        meter_a.subscribe("meters/#", "meters/+/cmd/#", "homeassistant/#")  # each refused, or granted and filtered
        assert meter_a.subscribe("meters/A/cmd/#") == [True]
        meter_b.publish("meters/B/reading", b"b-reading")
        meter_b.publish("meters/B/status", b"online", retain=True)
        bridge.publish("meters/B/cmd/replay", b"b-command")
        bridge.publish("meters/B/agg/60s", b"b-aggregate", retain=True)
        bridge.publish("homeassistant/device/B/config", b"b-discovery", retain=True)
        bridge.publish("meters/A/cmd/replay", b"marker")
        assert meter_a.until("meters/A/cmd/replay", b"marker") == []


def test_bridge_home_assistant_and_observer_rights(broker: Proc) -> None:
    """The bridge reads meters/# and writes aggregates, commands and discovery; Home Assistant reads those and says
    online; the observer reads everything and writes nothing."""
    port = broker.port or 0
    with (
        peer(port, "observer") as observer,
        peer(port, "bridge") as bridge,
        peer(port, "homeassistant") as ha,
        peer(port, "A") as meter_a,
    ):
        assert observer.subscribe("meters/#", "homeassistant/#") == [True, True]
        assert bridge.subscribe("meters/+/reading", "meters/+/status", "homeassistant/status") == [True] * 3
        assert ha.subscribe("meters/+/agg/#", "meters/+/status", "homeassistant/#") == [True] * 3
        assert meter_a.subscribe("meters/A/cmd/#") == [True]

        meter_a.publish("meters/A/reading", b"reading")
        assert bridge.until("meters/A/reading", b"reading") == []
        bridge.publish("meters/A/agg/60s", b"aggregate", retain=True)
        bridge.publish("homeassistant/device/A/config", b"discovery", retain=True)
        bridge.publish("meters/A/cmd/replay", b"command")
        assert meter_a.until("meters/A/cmd/replay", b"command") == []
        assert ha.until("meters/A/agg/60s", b"aggregate") == []
        assert ha.until("homeassistant/device/A/config", b"discovery") == []
        ha.publish("homeassistant/status", b"online")
        assert bridge.until("homeassistant/status", b"online") == []
        seen = observer.until("homeassistant/status", b"online")
        assert {(m.topic, m.payload) for m in seen} == {
            ("meters/A/reading", b"reading"),
            ("meters/A/agg/60s", b"aggregate"),
            ("homeassistant/device/A/config", b"discovery"),
            ("meters/A/cmd/replay", b"command"),
        }

        observer.publish("meters/A/reading", b"forged by the observer")
        ha.publish("meters/A/agg/60s", b"forged by home assistant")
        meter_a.publish("meters/A/reading", b"marker")
        assert bridge.until("meters/A/reading", b"marker") == []


def test_bridge_status_is_readable_by_home_assistant_and_observer_the_probes_are_not(broker: Proc) -> None:
    """The bridge publishes its availability on ``bridges/<name>/status``; Home Assistant (its entities need it) and
    the observer read it, but nothing else under ``bridges/``: the probe topics name the bridge's secret client id."""
    port = broker.port or 0
    status = bridge_status_topic(WHOLE_FLEET)
    with peer(port, "bridge") as bridge, peer(port, "homeassistant") as ha, peer(port, "observer") as observer:
        for reader in (ha, observer):
            reader.subscribe("bridges/#")  # refused, or granted and filtered
            assert reader.subscribe(BRIDGE_STATUS_SUBSCRIPTION) == [True]
        bridge.publish(probe_topic("bridge-sec"), b"probe")
        bridge.publish(status, b"online", retain=True)
        assert ha.until(status, b"online") == []
        assert observer.until(status, b"online") == []
        ha.publish(status, b"forged by home assistant", retain=True)
        observer.publish(status, b"forged by the observer", retain=True)
        bridge.publish(status, b"offline", retain=True)
        assert ha.until(status, b"offline") == []  # the forgeries never arrived


# --- TLS --------------------------------------------------------------------------------------------------------


def _start_tls_broker(kind: str, work: Path, server: Pem, ca: Pem) -> Proc:
    port = free_port()
    if kind == "amqtt":
        env = {
            "FLEET_HOUSEHOLDS": ",".join(TEST_METERS),
            "FLEET_MQTT_TLS_CERT": str(server.cert),
            "FLEET_MQTT_TLS_KEY": str(server.key),
        }
        argv = python_module("broker", "--host", LOOPBACK, "--port", str(port))
        proc = start("broker-amqtt-tls", argv, work, env=clean_env(env), port=port)
    else:
        conf = work / "mosquitto-tls.conf"
        work.mkdir(parents=True, exist_ok=True)
        text = mosquitto_test_config(port, work, mosquitto_auth(work / "auth"))
        conf.write_text(text + f"cafile {ca.cert}\ncertfile {server.cert}\nkeyfile {server.key}\n")
        proc = start("broker-mosquitto-tls", [mosquitto_binary(), "-c", str(conf)], work, port=port)
    proc.wait_port(port)
    return proc


def _handshake(port: int, cafile: Path) -> str:
    """A TLS handshake as paho's ``tls_set(ca_certs=cafile)`` makes it (its own attempt leaks the socket when the
    handshake fails): ``connected`` or the error."""
    context = ssl.create_default_context(cafile=str(cafile))
    with socket.create_connection((LOOPBACK, port), timeout=WAIT_S) as raw:
        try:
            with context.wrap_socket(raw, server_hostname=LOOPBACK):
                return CONNECTED
        except ssl.SSLError as exc:
            return f"failed: {exc}"


def _health(port: int) -> dict[str, object]:
    with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/healthz", timeout=5) as response:
        doc = json.loads(response.read())
    assert isinstance(doc, dict)
    return doc


def test_tls_listener(broker_kind: str, tmp_path: Path) -> None:
    """With a TLS listener: a client trusting its CA connects (meters and bridge too, via FLEET_MQTT_TLS_CA);
    plaintext to that port and a client trusting another CA fail."""
    ca = make_ca(tmp_path / "pki", "fleet test CA")
    other_ca = make_ca(tmp_path / "pki", "another CA")
    server = make_server_cert(tmp_path / "pki", ca, LOOPBACK)
    broker = _start_tls_broker(broker_kind, tmp_path / "broker", server, ca)
    port = broker.port or 0
    with running(broker):
        assert _attempt(port, "observer", tls_ca=ca.cert) == CONNECTED
        assert _attempt(port, None, tls_ca=ca.cert).startswith("refused")  # TLS does not replace logging in
        assert _attempt(port, "observer") != CONNECTED  # plaintext
        assert _handshake(port, ca.cert) == CONNECTED
        assert "CERTIFICATE_VERIFY_FAILED" in _handshake(port, other_ca.cert)

        env = {"FLEET_MQTT_TLS_CA": str(ca.cert)}
        with peer(port, "observer", tls_ca=ca.cert) as observer:
            assert observer.subscribe("meters/+/reading") == [True]
            bridge = start_bridge(port, tmp_path / "bridge", env=env)
            meters = start_meters(port, ["A"], tmp_path / "meters", speed=10, env=env)
            with running(bridge, meters):
                msg = observer.messages.get(timeout=WAIT_S)
                assert decode_reading(msg.topic, msg.payload).meter == "A"
                deadline = time.monotonic() + WAIT_S
                doc = _health(bridge.port or 0)
                while not (doc["mqtt"] == CONNECTED and "A" in doc["meters"]) and time.monotonic() < deadline:  # type: ignore[operator]
                    observer.messages.get(timeout=WAIT_S)  # the next reading: a wait on something, not a sleep
                    doc = _health(bridge.port or 0)
                assert doc["mqtt"] == CONNECTED, doc
                assert "A" in doc["meters"], doc  # type: ignore[operator]
