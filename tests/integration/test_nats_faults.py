"""Faults on a real 3-node NATS JetStream cluster: nodes killed and left dead, restarted one by one, frozen, or all
killed at once; whatever happens, every reading of every meter ends up in the bridge's history exactly once.

Each test starts its own cluster (``nats-config``'s code, the fleet's users), a bridge whose broker list starts on
``BRIDGE_NODE`` and one simulator process running ``SIZE`` meters given the whole list: each meter starts on the node
``crc32(id) % 3`` picks (6 of the 12 on node 1, 3 on each of the others) and moves on in its own seeded order. After
the fault the fleet runs on, the bridge repairs its gaps, the meters stop cleanly and the check is the one the
single-broker fault matrix makes (test_faults.py): every seq from 0 to each meter's last (read from its outbox) is in
the bridge's store exactly once, one reading a second, no open gap, no sequence restart. The figures (lost,
duplicate deliveries dropped, repaired, replayed) are printed and appended to ``$FAULT_REPORT`` when set.

Failover bound (the node-kill tests). A SIGKILLed node's sockets are closed by the kernel: each meter on it sees its
connection lost at once (a frozen node is noticed after up to two keepalives, ``KEEPALIVE_S``: a PINGREQ, then no
answer). It tries its next node after a random share of its back-off (at most ``RECONNECT_MIN_S``, 0.5 s, after a
connection that was up), paced at ``DEFAULT_CONNECT_RATE`` (500/s: 6 meters take 12 ms). A live node answers the
CONNECT once it has read the client's session from the replicated ``$MQTT_sess`` stream. When the dead node led that
stream, nothing answers until the two left elect a new leader: a follower waits 4-9 s for a lost leader before it
campaigns (nats-server's raft election timeout), and each attempt meanwhile fails after NATS's 4 s JetStream API
timeout (the node resets the connection) and is followed by a share of the doubled back-off (1, 2, 4 s). Worst case:
9 s election + less than 1 s campaign + a 4 s attempt that just missed it + a 4 s back-off share + the CONNACK and a
publish, about 19 s; ``FAILOVER_BOUND_S`` allows 30 s on a loaded 2-core machine. Measured figures are printed (and
in docs/reliability.md): 0.4-5.3 s when the dead node led no stream its meters needed, 10-15 s when it did.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from config.credentials import meter_client_id
from config.shard import shard_of
from tests.conftest import require_nats
from tests.support.faults import Figures, store_rows
from tests.support.fleetmeters import HOUSEHOLDS, fleet_ids, outbox_bounds
from tests.support.nats import NatsCluster, start_nats_cluster
from tests.support.procs import LOOPBACK, Proc, clean_env, free_port, python_module, start, start_meters, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.nats]

SIZE = 12
METERS = tuple(fleet_ids(SIZE))
NODES = (1, 2, 3)
SPEED = 20.0
KEEPALIVE_S = 2
BRIDGE_ID = "bridge-faults"
BRIDGE_NODE = 3  # the bridge's first node; node 1 has the most meters
BUSIEST = 1
FAILOVER_BOUND_S = 30.0
DOWN_S = 10.0  # a frozen node's outage
WAIT_S = 60.0


@dataclass
class Fleet:
    """One scenario's cluster, bridge and meters."""

    cluster: NatsCluster
    root: Path
    bridge: Proc
    meters: Proc
    frozen: set[int] = field(default_factory=set)  # nodes stopped with SIGSTOP: their monitoring port hangs

    def api_meters(self) -> dict[str, dict[str, object]]:
        """The bridge's ``/api/meters``."""
        with urllib.request.urlopen(f"http://{LOOPBACK}:{self.bridge.port}/api/meters", timeout=5) as response:
            found = json.loads(response.read())["meters"]
        assert isinstance(found, dict)
        return found

    def received(self) -> dict[str, int]:
        """Readings the bridge has stored, per meter."""
        return {m: int(str(row.get("received", 0))) for m, row in self.api_meters().items()}

    def flowing(self, more: int, what: str) -> None:
        """Wait until every meter is connected to a live node and then has ``more`` readings at the bridge beyond
        what it had (readings that waited in the cluster's queues do not count as the fleet running)."""
        wait_until(lambda: set(self.placement()) == set(METERS), WAIT_S, f"every meter connected: {what}")
        before = self.received()
        wait_until(lambda: all(self.received().get(m, 0) >= before.get(m, 0) + more for m in METERS), WAIT_S, what)

    def placement(self) -> dict[str, int]:
        """The node each meter is connected to now (meters between nodes are missing)."""
        found: dict[str, int] = {}
        for node in NODES:
            if self.cluster.nodes[node - 1].alive() and node not in self.frozen:
                for meter in METERS:
                    if meter_client_id(meter) in self.cluster.clients(node):
                        found[meter] = node
        return found


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    """A cluster of this test's own: the tests kill its nodes."""
    require_nats()
    nodes = start_nats_cluster(tmp_path / "nats", meters=METERS)
    try:
        yield nodes
    finally:
        nodes.stop()


def _start_bridge(cluster: NatsCluster, root: Path) -> Proc:
    port = free_port()
    argv = python_module("bridge", "--broker", cluster.urls(first=BRIDGE_NODE), "--host", LOOPBACK, "--port", str(port))
    env = {
        "FLEET_SPEED": str(SPEED),
        "FLEET_HOUSEHOLDS": ",".join(METERS),
        "FLEET_HA_DISCOVERY": "false",
        "FLEET_BRIDGE_ID": BRIDGE_ID,
    }
    proc = start("bridge", argv, root / "bridge", env=clean_env(env), port=port)
    proc.wait_port(port)
    proc.wait_mqtt(port)
    # Each QoS 1 filter becomes a replicated JetStream consumer after the SUBACK; a reading published before it
    # exists never reaches a new session. Wait for both reading filters' consumers.
    subjects = {"meters.*.reading", "meters.*.readings"}
    wait_until(
        lambda: cluster.subscribed(BRIDGE_NODE, BRIDGE_ID, subjects), WAIT_S, "the bridge's consumers on the cluster"
    )
    return proc


@contextlib.contextmanager
def _fleet(cluster: NatsCluster, root: Path) -> Iterator[Fleet]:
    bridge = _start_bridge(cluster, root)
    fleet = Fleet(cluster, root, bridge, bridge)
    try:
        fleet.meters = start_meters(
            cluster.mqtt_port(1),
            HOUSEHOLDS,
            root / "meters",
            speed=SPEED,
            start_at="06:00:00",
            extra=["--fleet", str(SIZE), "--broker", cluster.urls(), "--keepalive", str(KEEPALIVE_S)],
        )
        fleet.flowing(20, "the fleet running")
        expected = {m: shard_of(m, len(NODES)) + 1 for m in METERS}
        wait_until(lambda: fleet.placement() == expected, WAIT_S, f"the meters on their first nodes {expected}")
        yield fleet
    finally:
        for proc in (fleet.meters, fleet.bridge):
            if proc.alive():
                proc.stop()


def _check_and_report(fleet: Fleet, scenario: str) -> Figures:
    """Let the bridge repair its gaps while the meters run, stop the meters cleanly, wait for the bridge to hold
    everything, check that it holds each seq exactly once, and give the figures."""
    # Stop only while every meter is connected and publishing: a meter between nodes at the stop keeps its held
    # readings in its outbox for its next start, which this run does not have (seen once: a node reset one meter's
    # connection 0.6 s before the stop, after the rolling restart had settled).
    fleet.flowing(5, "every meter publishing before the stop")
    wait_until(lambda: all(row["gaps_open"] == 0 for row in fleet.api_meters().values()), WAIT_S, "no gap open")
    assert fleet.meters.stop(signal.SIGTERM) == 0, fleet.meters.log()[-3000:]
    last = {m: seq for m, (seq, _, _) in outbox_bounds(fleet.root / "meters").items()}
    assert set(last) == set(METERS)

    def complete() -> bool:
        rows = fleet.api_meters()
        return all(rows[m]["last_seq"] == last[m] and rows[m]["gaps_open"] == 0 for m in METERS)

    # What the cluster still holds for the bridge comes after NATS's ack wait (30 s) at worst, then repairs run.
    wait_until(complete, 2 * WAIT_S, "every seq up to each meter's last held, no gap open")
    summary = fleet.api_meters()
    assert fleet.bridge.stop(signal.SIGTERM) == 0, fleet.bridge.log()[-3000:]  # flushes the store
    lost = 0
    for meter in METERS:
        rows = store_rows(fleet.root / "bridge", meter)
        seqs = [row[0] for row in rows]
        missing = sorted(set(range(last[meter] + 1)) - set(seqs))
        lost += len(missing)
        assert seqs == list(range(last[meter] + 1)), f"{meter}: missing {missing[:20]}, {len(seqs)} rows"
        assert int(str(rows[-1][1])) - int(str(rows[0][1])) == last[meter], f"{meter}: not one reading a second"
        assert (summary[meter]["received"], summary[meter]["seq_restarts"]) == (last[meter] + 1, 0), summary[meter]
    figures = Figures.of(scenario, "nats-3", sum(seq + 1 for seq in last.values()), lost, summary)
    figures.report()
    return figures


def _failover_times(fleet: Fleet, moved: set[str], killed: float) -> dict[str, float]:
    """Seconds from ``killed`` until each meter of ``moved`` is connected to a live node and has published through
    it (its count at the bridge grew after it was seen there). Polled every 0.1 s, bounded."""
    seen_at: dict[str, int] = {}  # readings at the bridge when the meter was first seen on a live node
    back: dict[str, float] = {}
    tick, pause = time.monotonic, threading.Event()
    while set(back) != moved:
        assert tick() - killed < FAILOVER_BOUND_S, (
            f"not every meter republishing {FAILOVER_BOUND_S} s after the kill: {sorted(moved - set(back))}"
        )
        with contextlib.suppress(OSError):
            placement = fleet.placement()
            received = fleet.received()
            for meter in moved - set(back):
                if meter in seen_at and received[meter] > seen_at[meter]:
                    back[meter] = tick() - killed
                elif meter in placement and meter not in seen_at:
                    seen_at[meter] = received[meter]
        pause.wait(0.1)  # the poll period of a measurement, bounded by the assert above
    return back


def _print_failover(scenario: str, back: dict[str, float]) -> None:
    times = sorted(back.values())
    figures = {
        "scenario": scenario,
        "meters": len(times),
        "min_s": round(times[0], 2),
        "p50_s": round(statistics.median(times), 2),
        "max_s": round(times[-1], 2),
        "bound_s": FAILOVER_BOUND_S,
        "each_s": [round(t, 2) for t in times],
    }
    print(f"\nFAILOVER FIGURES {json.dumps(figures)}")
    path = os.environ.get("FAULT_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(figures) + "\n")


def test_node_with_most_meters_sigkilled_and_left_dead(cluster: NatsCluster, tmp_path: Path) -> None:
    with _fleet(cluster, tmp_path) as fleet:
        on_busiest = {m for m, node in fleet.placement().items() if node == BUSIEST}
        assert len(on_busiest) == 6
        killed = time.monotonic()
        assert cluster.nodes[BUSIEST - 1].stop(signal.SIGKILL) == -signal.SIGKILL
        back = _failover_times(fleet, on_busiest, killed)
        _print_failover("node with most meters SIGKILLed", back)
        # The nodes left may also reset other meters while JetStream elects leaders: wait until every meter is on one.
        wait_until(lambda: set(fleet.placement()) == set(METERS), WAIT_S, "every meter on a live node")
        moved_to = fleet.placement()
        assert set(moved_to) == set(METERS)
        spread = {node: sum(1 for m in on_busiest if moved_to[m] == node) for node in (2, 3)}
        assert all(spread.values()), f"the dead node's meters all went to one node: {spread}"
        fleet.flowing(40, "the fleet running on two nodes")
        _check_and_report(fleet, "node with most meters SIGKILLed, left dead")


def test_bridge_node_sigkilled_and_left_dead(cluster: NatsCluster, tmp_path: Path) -> None:
    with _fleet(cluster, tmp_path) as fleet:
        assert cluster.nodes[BRIDGE_NODE - 1].stop(signal.SIGKILL) == -signal.SIGKILL
        dead = cluster.url(BRIDGE_NODE)

        def moved() -> bool:
            after = fleet.bridge.log().split(f"bridge connected to {dead} ")[-1]
            return "bridge connected to" in after

        wait_until(moved, WAIT_S, "the bridge connected to another node")
        after = fleet.bridge.log().split(f"bridge connected to {dead} ")[-1]
        connects = [line for line in after.splitlines() if "bridge connected to" in line]
        assert connects, after
        assert all(line.endswith("(its session kept)") for line in connects), connects  # nothing queued was lost
        fleet.flowing(40, "readings through the bridge's new node")
        _check_and_report(fleet, "bridge's node SIGKILLed, left dead")


def test_rolling_restart(cluster: NatsCluster, tmp_path: Path) -> None:
    """SIGTERM each node in turn (nats-server shuts down cleanly), start it again, and wait until it has rejoined
    (routes, JetStream current) and the fleet runs on before the next."""
    with _fleet(cluster, tmp_path) as fleet:
        for node in NODES:
            assert cluster.nodes[node - 1].stop(signal.SIGTERM) in (0, 1), cluster.nodes[node - 1].log()[-3000:]
            cluster.restart(node)
            wait_until(cluster.healthy, WAIT_S, f"node {node} rejoined, JetStream current")
            fleet.flowing(20, f"readings after node {node}'s restart")
        _check_and_report(fleet, "rolling restart (SIGTERM each node, wait for it to rejoin)")


def test_node_frozen_10_s(cluster: NatsCluster, tmp_path: Path) -> None:
    """SIGSTOP the node with the most meters for 10 s (its sockets stay open, nothing answers), then SIGCONT."""
    with _fleet(cluster, tmp_path) as fleet:
        frozen = cluster.nodes[BUSIEST - 1]
        on_frozen = {m for m, node in fleet.placement().items() if node == BUSIEST}
        os.kill(frozen.popen.pid, signal.SIGSTOP)
        fleet.frozen.add(BUSIEST)
        frozen_at = time.monotonic()
        moved: dict[str, float] = {}
        try:
            # Its meters notice after up to two keepalives (a PINGREQ, then no answer) and try the other nodes,
            # which answer once JetStream has a leader for what the frozen node led (a figure, not a condition).
            tick = threading.Event()
            while (elapsed := time.monotonic() - frozen_at) < DOWN_S:  # the outage itself (wall time), bounded
                with contextlib.suppress(OSError):
                    for meter in set(fleet.placement()) & on_frozen - set(moved):
                        moved[meter] = elapsed
                tick.wait(0.2)
        finally:
            os.kill(frozen.popen.pid, signal.SIGCONT)
            fleet.frozen.clear()
        times = " ".join(f"{t:.1f}" for t in sorted(moved.values()))
        print(
            f"\nFROZEN NODE: {len(moved)} of its {len(on_frozen)} meters on another node within {DOWN_S:g} s: {times}"
        )
        wait_until(cluster.healthy, WAIT_S, "the frozen node back in the cluster, JetStream current")
        fleet.flowing(20, "readings after the node came back")
        _check_and_report(fleet, "node with most meters frozen 10 s (SIGSTOP)")


def test_every_node_sigkilled_then_restarted(cluster: NatsCluster, tmp_path: Path) -> None:
    """All three nodes SIGKILLed at once and started again (JetStream on disk): what the cluster lost, the meters'
    outboxes replay."""
    with _fleet(cluster, tmp_path) as fleet:
        for node in NODES:
            assert cluster.nodes[node - 1].stop(signal.SIGKILL) == -signal.SIGKILL
        for node in NODES:
            cluster.restart(node)
        wait_until(cluster.healthy, WAIT_S, "the cluster formed again, JetStream current")
        fleet.flowing(40, "readings after the restart")
        _check_and_report(fleet, "every node SIGKILLed at once, then restarted")
