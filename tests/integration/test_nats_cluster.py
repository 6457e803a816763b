"""The fleet on a real 3-node NATS JetStream cluster (nats-server's MQTT gateway), configured by
``python -m broker nats-config``'s code: logins and topic rules, retained messages across nodes, readings end to end,
two bridge shards on two nodes, and what an intruder with a meter's login can do with the bridge's client id.

One cluster serves the whole module (``nats_cluster`` in tests/conftest.py). Non-delivery is proved with a marker, as
in test_security.py: the forbidden messages are published (and acknowledged) first, then a permitted marker; once the
marker has arrived, anything the forbidden messages would have caused has arrived too.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import secrets
import signal
import socket
import sys
import urllib.request
from pathlib import Path

import pytest

from config.credentials import bridge_client_id
from config.secret import load_or_create_secret
from config.shard import Shard
from tests.conftest import require_nats
from tests.integration.test_security import CONNECTED, Peer, peer
from tests.support.fleetmeters import fleet_ids, outbox_bounds, start_fleet_meters
from tests.support.mqtt import Msg
from tests.support.nats import NatsCluster
from tests.support.paths import ROOT
from tests.support.procs import (
    TEST_METERS,
    Proc,
    clean_env,
    fleet_secret,
    free_port,
    login,
    running,
    start,
    start_bridge,
    start_meters,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.nats]

SHARD_SIZE = 16  # crc32 splits these ids 8/8 over two shards (as test_sharding.py)
SHARD_SPEED = 30.0
SHARD_RUN_S = 120  # simulated seconds every meter publishes, at least, before it is stopped
NATS_METERS = (*TEST_METERS, *fleet_ids(SHARD_SIZE))  # who the module's cluster lets in (see tests/conftest.py)
NODES = (1, 2, 3)


def _attempt(port: int, user: str | None, password: str | None = None, client_id: str | None = None) -> str:
    client = Peer(port, user, password, client_id=client_id)
    try:
        return client.connect()
    finally:
        client.close()


def _live(messages: list[Msg]) -> list[Msg]:
    """The messages that were published while the subscriber listened: the cluster is shared by the module, so a
    subscription also brings the retained messages of earlier tests (flagged retained; live ones never are)."""
    return [msg for msg in messages if not msg.retain]


def _meters(http_port: int) -> dict[str, dict[str, int]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/api/meters", timeout=5) as response:
        meters = json.loads(response.read())["meters"]
    assert isinstance(meters, dict)
    return meters


def _received(http_port: int, meter: str) -> int:
    return int(_meters(http_port).get(meter, {}).get("received") or 0)


# --- Logins -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("node", NODES)
def test_anonymous_client_is_refused_on_every_node(nats_cluster: NatsCluster, node: int) -> None:
    assert _attempt(nats_cluster.mqtt_port(node), None).startswith("refused")


@pytest.mark.parametrize(
    ("user", "password"),
    [
        ("A", "wrong"),
        ("A", login("B")["password"]),  # another meter's password
        ("bridge", login("observer")["password"]),
        ("observer", ""),
        ("mallory", login("A")["password"]),  # no such user
        ("E", login("E")["password"]),  # a valid meter id the cluster was not told about
    ],
)
def test_wrong_password_or_unknown_user_is_refused(nats_cluster: NatsCluster, user: str, password: str) -> None:
    assert _attempt(nats_cluster.mqtt_port(2), user, password).startswith("refused")


@pytest.mark.parametrize("user", ["A", "Z", "bridge", "homeassistant", "observer"])
def test_every_user_connects_with_its_password_on_every_node(nats_cluster: NatsCluster, user: str) -> None:
    """nats-server verifies the bcrypt hashes nats-config writes, on each node."""
    assert [_attempt(nats_cluster.mqtt_port(node), user) for node in NODES] == [CONNECTED] * 3


# --- Topic rules, across nodes ----------------------------------------------------------------------------------


def test_meter_publishes_only_under_its_own_topics(nats_cluster: NatsCluster) -> None:
    """Meter A (node 1) forging B's reading, status or commands, or the bridge's aggregates or discovery: nothing
    reaches the bridge (node 3), and nothing forged is retained (a late observer on node 2)."""
    with peer(nats_cluster.mqtt_port(3), "bridge") as bridge, peer(nats_cluster.mqtt_port(1), "A") as meter_a:
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
        marker = secrets.token_hex(4).encode()
        meter_a.publish("meters/A/reading", marker)
        assert _live(bridge.until("meters/A/reading", marker)) == []
    with peer(nats_cluster.mqtt_port(2), "observer") as late:
        assert late.subscribe("meters/#", "homeassistant/#") == [True, True]
        with peer(nats_cluster.mqtt_port(1), "A") as meter_a:
            meter_a.publish("meters/A/status", marker, retain=True)
        seen = late.until("meters/A/status", marker)
        assert [m for m in seen if m.payload == b"forged"] == []


def test_observer_and_home_assistant_cannot_publish_readings(nats_cluster: NatsCluster) -> None:
    """The observer (node 2) publishes nothing at all, Home Assistant (node 2) only its status: the bridge (node 3)
    sees neither forgery, then meter A's marker."""
    with (
        peer(nats_cluster.mqtt_port(3), "bridge") as bridge,
        peer(nats_cluster.mqtt_port(2), "observer") as observer,
        peer(nats_cluster.mqtt_port(2), "homeassistant") as ha,
        peer(nats_cluster.mqtt_port(1), "A") as meter_a,
    ):
        assert bridge.subscribe("meters/#", "homeassistant/#") == [True, True]
        observer.publish("meters/A/reading", b"forged by the observer")
        observer.publish("homeassistant/status", b"forged by the observer")
        ha.publish("meters/A/agg/60s", b"forged by home assistant")
        ha.publish("homeassistant/status", b"online")
        assert _live(bridge.until("homeassistant/status", b"online")) == []
        marker = secrets.token_hex(4).encode()
        meter_a.publish("meters/A/reading", marker)
        assert _live(bridge.until("meters/A/reading", marker)) == []


def test_meter_reads_only_its_own_commands(nats_cluster: NatsCluster) -> None:
    """Meter A (node 1) subscribed to everything it may try, NATS's internal ``$MQTT/...`` subjects included, gets
    nothing of B's (node 2) nor of the bridge's (node 3) but its own command."""
    with (
        peer(nats_cluster.mqtt_port(1), "A") as meter_a,
        peer(nats_cluster.mqtt_port(2), "B") as meter_b,
        peer(nats_cluster.mqtt_port(3), "bridge") as bridge,
    ):
        # Each refused by NATS (a permission violation, or a reserved $MQTT subject), or granted and filtered.
        meter_a.subscribe("meters/#", "meters/+/cmd/#", "homeassistant/#", "#", "$MQTT/sub/#", "$MQTT/#")
        assert meter_a.subscribe("meters/A/cmd/#") == [True]
        meter_b.publish("meters/B/reading", b"b-reading")
        meter_b.publish("meters/B/status", b"online", retain=True)
        bridge.publish("meters/B/cmd/replay", b"b-command")
        bridge.publish("meters/B/agg/60s", b"b-aggregate", retain=True)
        bridge.publish("homeassistant/device/B/config", b"b-discovery", retain=True)
        marker = secrets.token_hex(4).encode()
        bridge.publish("meters/A/cmd/replay", marker)
        assert meter_a.until("meters/A/cmd/replay", marker) == []  # retained or live: nothing of B's at all


def test_nats_internal_subjects_are_refused_to_every_user(nats_cluster: NatsCluster) -> None:
    """The one internal subject family the users may subscribe to (QoS 1 deliveries, ``$MQTT.sub.>``) stays the
    server's: nats-server itself refuses ``$MQTT/sub/...`` filters to MQTT clients; the other internal subjects
    (stored messages, sessions) are outside every user's permissions (with ``subscribe: >`` they would be granted)."""
    with peer(nats_cluster.mqtt_port(1), "A") as meter_a, peer(nats_cluster.mqtt_port(2), "observer") as observer:
        assert meter_a.subscribe("$MQTT/sub/+", "$MQTT/sub/#") == [False, False]
        assert observer.subscribe("$MQTT/sub/#", "$MQTT/msgs/#", "$MQTT/sess/#") == [False] * 3


# --- Retained messages and readings across nodes ----------------------------------------------------------------


def test_retained_status_and_discovery_are_read_through_every_other_node(nats_cluster: NatsCluster) -> None:
    """A's ``status`` and the bridge's Home Assistant discovery, retained through node 1, reach a new subscriber on
    node 2 and on node 3 as retained messages."""
    status = f"online-{secrets.token_hex(3)}".encode()
    discovery = json.dumps({"name": "A", "nonce": secrets.token_hex(3)}).encode()
    with peer(nats_cluster.mqtt_port(1), "A") as meter_a, peer(nats_cluster.mqtt_port(1), "bridge") as bridge:
        meter_a.publish("meters/A/status", status, retain=True)
        bridge.publish("homeassistant/sensor/A/config", discovery, retain=True)
    for node in (2, 3):
        with peer(nats_cluster.mqtt_port(node), "homeassistant") as ha:
            assert ha.subscribe("meters/+/status", "homeassistant/sensor/+/config") == [True, True]
            got: dict[str, tuple[bytes, bool]] = {}
            for _ in range(20):  # retained messages of earlier tests may come too
                if got.get("meters/A/status", (b"",))[0] == status and "homeassistant/sensor/A/config" in got:
                    break
                msg = ha.messages.get(timeout=10)
                got[msg.topic] = (msg.payload, msg.retain)
            assert got["meters/A/status"] == (status, True), node
            assert got["homeassistant/sensor/A/config"] == (discovery, True), node


def test_readings_flow_from_meters_on_node_1_to_the_bridge_on_node_3(nats_cluster: NatsCluster, tmp_path: Path) -> None:
    # Its own client id: the cluster outlives the test, and so does a persistent session (with queued readings).
    bridge = start_bridge(
        nats_cluster.mqtt_port(3),
        tmp_path / "bridge",
        env={"FLEET_HOUSEHOLDS": "A,B,C", "FLEET_SPEED": "30", "FLEET_BRIDGE_ID": "bridge-readings"},
    )
    with running(bridge):
        meters = start_meters(nats_cluster.mqtt_port(1), ["A", "B", "C"], tmp_path / "meters", speed=30)
        with running(meters):
            http = bridge.port or 0
            wait_until(lambda: all(_received(http, m) >= 30 for m in "ABC"), 90, "30 readings of A, B, C at the bridge")
            rows = _meters(http)
            assert {m: (rows[m]["gaps_open"], rows[m]["seq_restarts"]) for m in "ABC"} == {m: (0, 0) for m in "ABC"}
        assert meters.stop() == 0
    assert bridge.stop() == 0


def test_two_bridge_shards_on_two_nodes_each_own_half_nothing_lost_or_doubled(
    nats_cluster: NatsCluster, tmp_path: Path
) -> None:
    """Bridges ``0/2`` (node 1) and ``1/2`` (node 2), a fleet of 16 meters on node 3, as test_sharding.py does on
    Mosquitto: after the meters stop, each bridge holds exactly its half, every seq from 0 to each meter's last."""
    ids = fleet_ids(SHARD_SIZE)
    shards = [Shard(k, 2) for k in range(2)]
    owned = [set(shard.owned(ids)) for shard in shards]
    assert [len(mine) for mine in owned] == [SHARD_SIZE // 2] * 2
    with contextlib.ExitStack() as stack:
        bridges: list[Proc] = []
        for shard, node in zip(shards, (1, 2), strict=True):
            env = {
                "FLEET_SPEED": str(SHARD_SPEED),
                "FLEET_HOUSEHOLDS": ",".join(ids),
                "FLEET_SHARD": str(shard),
                "FLEET_BRIDGE_ID": f"bridge-{shard.index}",
            }
            bridges.append(start_bridge(nats_cluster.mqtt_port(node), tmp_path / f"bridge-{shard.index}", env=env))
            stack.enter_context(running(bridges[-1]))
            # "connected" is the CONNACK; each QoS 1 filter becomes a replicated JetStream consumer after it, and a
            # reading published before that one exists never reaches the bridge (its session is new): wait for them.
            wanted = {f"meters.{meter}.*" for meter in owned[shard.index]}
            client_id = env["FLEET_BRIDGE_ID"]
            wait_until(
                lambda: nats_cluster.subscribed(node, client_id, wanted),  # noqa: B023 -- called at once
                60,
                f"{client_id}'s subscriptions on node {node}",
            )
        meters = start_fleet_meters(nats_cluster.mqtt_port(3), SHARD_SIZE, tmp_path / "meters", speed=SHARD_SPEED)
        stack.enter_context(running(meters))

        def ran() -> bool:
            return all(
                len(_meters(b.port or 0)) == SHARD_SIZE // 2
                and all(int(row["received"]) >= SHARD_RUN_S for row in _meters(b.port or 0).values())
                for b in bridges
            )

        wait_until(ran, 90 + SHARD_RUN_S / SHARD_SPEED, f"every meter's {SHARD_RUN_S} readings at its bridge")
        assert meters.stop(signal.SIGTERM) == 0, meters.log()[-3000:]
        last = {meter: seq for meter, (seq, _, _) in outbox_bounds(tmp_path / "meters").items()}
        assert set(last) == set(ids)

        def complete() -> bool:
            for bridge, mine in zip(bridges, owned, strict=True):
                rows = _meters(bridge.port or 0)
                if any(rows[m]["last_seq"] != last[m] or rows[m]["gaps_open"] != 0 for m in mine):
                    return False
            return True

        wait_until(complete, 60, "every seq up to each meter's last held by its bridge, no gap open")
        for bridge, mine in zip(bridges, owned, strict=True):
            rows = _meters(bridge.port or 0)
            assert set(rows) == mine  # only its own half
            for meter in mine:
                assert rows[meter]["received"] == last[meter] + 1, (meter, rows[meter])  # each seq exactly once
                assert (rows[meter]["gaps_open"], rows[meter]["seq_restarts"]) == (0, 0), (meter, rows[meter])
    total = sum(seq + 1 for seq in last.values())
    print(f"\nNATS SHARDING FIGURES {json.dumps({'meters': SHARD_SIZE, 'readings': total})}")


# --- Client ids: what NATS 2.9 does not bind ----------------------------------------------------------------------


def test_intruder_with_a_meter_login_and_the_bridges_client_id(nats_cluster: NatsCluster, tmp_path: Path) -> None:
    """A measurement, not a wish: nats-server 2.9 cannot bind a client id to a user. A real bridge (node 3, its
    derived client id, persistent session) hears meter A (node 1). An intruder with meter A's own login and the
    bridge's client id (node 2) is let in, and the cluster closes the bridge's connection (the session is handed
    over). The intruder reads nothing of the bridge's subscriptions (they are re-made under A's permissions and
    refused), and once it leaves, the bridge reconnects and every reading of A arrives, no gap left open."""
    bridge_id = bridge_client_id(load_or_create_secret(fleet_secret()))
    bridge = start_bridge(nats_cluster.mqtt_port(3), tmp_path / "bridge", env={"FLEET_HOUSEHOLDS": "A"})
    meters = start_meters(nats_cluster.mqtt_port(1), ["A"], tmp_path / "meters", speed=10)
    with running(bridge, meters):
        http = bridge.port or 0
        wait_until(lambda: _received(http, "A") > 0, 60, "readings of A at the bridge")
        assert "bridge disconnected" not in bridge.log()
        intruder = Peer(nats_cluster.mqtt_port(2), "A", client_id=bridge_id, clean_session=False)
        try:
            assert intruder.connect() == CONNECTED  # no binding: NATS lets A in with the bridge's id
            wait_until(lambda: "bridge disconnected" in bridge.log(), 30, "the cluster closing the bridge's link")
            connz = nats_cluster.monitor(2, "/connz?auth=1")
            seen = [
                (c.get("mqtt_client"), c.get("authorized_user"))
                for c in connz.get("connections", [])  # type: ignore[attr-defined]
                if c.get("mqtt_client") == bridge_id
            ]
            assert (bridge_id, "A") in seen, connz  # the monitoring port shows who holds the id
            stolen: list[str] = []
            with contextlib.suppress(queue.Empty):
                for _ in range(50):
                    stolen.append(intruder.messages.get(timeout=0.2).topic)
        finally:
            intruder.close()
        assert [topic for topic in stolen if topic.startswith("meters/")] == []
        before = _received(http, "A")
        wait_until(lambda: _received(http, "A") >= before + 10, 60, "ten more readings of A after the intruder left")
        wait_until(lambda: _meters(http)["A"]["gaps_open"] == 0, 60, "no gap of A left open (repaired by replay)")
        assert meters.stop() == 0
        last = max(seq for seq, _, _ in outbox_bounds(tmp_path / "meters").values())
        wait_until(lambda: _meters(http)["A"]["last_seq"] == last, 30, "A's last reading at the bridge")
        row = _meters(http)["A"]
        assert (row["received"], row["gaps_open"]) == (last + 1, 0), row  # nothing lost in the end
        takeovers = bridge.log().count("bridge disconnected")
        print(f"\nNATS INTRUDER FIGURES {json.dumps({'bridge_disconnects': takeovers, 'last_seq': last})}")


# --- make cluster -----------------------------------------------------------------------------------------------


def _free_run(count: int) -> int:
    """A port p such that p .. p + count - 1 are all free on loopback right now (bounded attempts)."""
    for _ in range(50):
        base = free_port()
        if base + count > 65535:
            continue
        try:
            with contextlib.ExitStack() as stack:
                for port in range(base, base + count):
                    sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
                    sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise RuntimeError(f"no {count} consecutive free ports found")


def test_make_cluster_runs_three_nodes_six_meters_and_two_bridge_shards(tmp_path: Path) -> None:
    """``make cluster`` from a clean data directory: writes the configs, starts 3 nodes, six meters of households A,
    B, C (two per node) and two bridge shards on nodes 1 and 3; every meter is heard by exactly its shard; SIGTERM
    stops it all."""
    require_nats()
    ports = {name: _free_run(3) for name in ("MQTT", "CLIENT", "ROUTE", "MONITOR")}
    http = _free_run(2)
    env = clean_env(
        {
            "FLEET_SPEED": "10",
            "FLEET_DATA_DIR": str(tmp_path / "data"),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
    )
    del env["FLEET_MQTT_SECRET"]  # as on a developer's machine: the recipe makes one for every process
    argv = [
        "make",
        "-C",
        str(ROOT),
        "--no-print-directory",
        "cluster",
        f"VENV={sys.prefix}",
        f"CLUSTER_HTTP_PORT={http}",
    ]
    argv += [f"CLUSTER_{name}_PORT={port}" for name, port in ports.items()]
    make = start("make-cluster", argv, tmp_path, env=env)
    try:
        make.wait_port(http, timeout=60)
        make.wait_port(http + 1, timeout=60)
        ids = fleet_ids(6)  # two per node, of households A, B, C (Procfile.cluster)
        owned = [set(Shard(k, 2).owned(ids)) for k in range(2)]
        assert all(owned), owned  # split over both shards

        def heard() -> bool:
            rows = [_meters(http + k) for k in range(2)]
            return all(set(rows[k]) == owned[k] and all(rows[k][m]["received"] > 0 for m in owned[k]) for k in range(2))

        wait_until(heard, 90, f"readings of {owned[0]} at bridge-0 and of {owned[1]} at bridge-1")
        assert sorted(p.name for p in (tmp_path / "data" / "nats").glob("*.conf")) == [
            "node-1.conf",
            "node-2.conf",
            "node-3.conf",
        ]
    finally:
        code = make.stop(signal.SIGTERM, timeout=30)
    log = make.log()
    assert code in (0, -signal.SIGTERM), log
    for name in ("meters-1", "meters-2", "meters-3", "bridge-0", "bridge-1"):
        assert f"{name} exited (rc=0)" in log, log
    for name in ("nats-1", "nats-2", "nats-3"):
        assert f"{name} exited (rc=" in log, log  # nats-server exits 1 after SIGTERM, having shut down cleanly
    assert "sending SIGKILL" not in log, log
