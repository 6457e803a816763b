"""A real NATS JetStream cluster (nats-server 2.9+) on free loopback ports, for integration tests.

``start_nats_cluster`` writes each node's config with the code ``python -m broker nats-config`` runs
(``broker.nats``, ``config.credentials.nats_users``, the test run's fleet secret), starts the nodes, and returns once
every node's MQTT port accepts, every node sees the others (``/routez``), the JetStream meta group has a leader on
every node (``/jsz``), and an MQTT login through node 1 works (which creates the MQTT streams, replicated).
"""

from __future__ import annotations

import json
import queue
import shutil
import signal
import urllib.request
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from broker.nats import ClusterLayout, NodePorts, cluster_configs, config_name, node_name
from config.credentials import fleet_rules, nats_users
from config.secret import load_or_create_secret
from config.settings import DEFAULT_HA_PREFIX
from tests.support.procs import LOOPBACK, TEST_METERS, Proc, fleet_secret, free_ports, login, start, wait_until

TEST_BCRYPT_COST = 4  # bcrypt's least: the cluster's start hashes every user once per node config
READY_ATTEMPTS = 12  # MQTT logins tried (each up to READY_LOGIN_S) before a cluster counts as broken
READY_LOGIN_S = 5.0


def _which(tool: str) -> str | None:
    return shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/usr/local/sbin:/sbin")


def nats_missing() -> str | None:
    """Why NATS tests cannot run here, or None."""
    if _which("nats-server") is None:
        return "nats-server not installed: apt-get install -y nats-server"
    return None


def nats_binary() -> str:
    """Path of the nats-server binary."""
    found = _which("nats-server")
    if found is None:
        raise RuntimeError("nats-server not installed")
    return found


@dataclass
class NatsCluster:
    """A running cluster: its nodes (processes, in order) and their ports."""

    nodes: list[Proc]
    layout: ClusterLayout
    restarts: int = 0

    def mqtt_port(self, index: int) -> int:
        """Node ``index``'s (1-based) MQTT port."""
        return self.layout.nodes[index - 1].mqtt

    def monitor(self, index: int, path: str) -> dict[str, object]:
        """GET ``path`` (``/connz``, ``/routez``, ...) of node ``index``'s (1-based) monitoring port."""
        url = f"http://{LOOPBACK}:{self.layout.nodes[index - 1].http}{path}"
        with urllib.request.urlopen(url, timeout=5) as response:
            found = json.loads(response.read())
        assert isinstance(found, dict)
        return found

    def subscriptions(self, index: int, client_id: str) -> list[str]:
        """The NATS subjects the MQTT client ``client_id`` on node ``index`` (1-based) is subscribed to (a QoS 1 MQTT
        filter shows as its subject and, once its JetStream consumer exists, a ``$MQTT.sub.<id>`` delivery subject).
        """
        connz = self.monitor(index, "/connz?subs=1&limit=1024")
        found: list[str] = []
        for conn in connz.get("connections") or []:  # type: ignore[attr-defined]
            if conn.get("mqtt_client") == client_id:
                found += conn.get("subscriptions_list") or []
        return found

    def url(self, index: int) -> str:
        """Node ``index``'s (1-based) MQTT URL."""
        return f"mqtt://{LOOPBACK}:{self.mqtt_port(index)}"

    def urls(self, first: int = 1) -> str:
        """Every node's MQTT URL, comma-separated (a broker list as ``FLEET_BROKER`` takes it), node ``first`` first
        and the others in order after it."""
        size = len(self.layout.nodes)
        return ",".join(self.url((first - 1 + k) % size + 1) for k in range(size))

    def clients(self, index: int) -> set[str]:
        """The MQTT client ids connected to node ``index`` (1-based) right now."""
        connz = self.monitor(index, "/connz?limit=100000")
        return {str(c["mqtt_client"]) for c in connz.get("connections") or [] if c.get("mqtt_client")}  # type: ignore[attr-defined]

    def restart(self, index: int) -> None:
        """Start node ``index`` (1-based) again on its config, ports and JetStream directory (after it was stopped)."""
        old = self.nodes[index - 1]
        assert not old.alive(), f"{old.name} is still running"
        self.restarts += 1
        argv = [nats_binary(), "-c", str(self.layout.out / config_name(index))]
        name = f"nats-{node_name(index)}-again-{self.restarts}"  # a log of its own: the first one is kept
        self.nodes[index - 1] = start(name, argv, self.layout.out, port=self.mqtt_port(index))
        self.nodes[index - 1].wait_port(self.mqtt_port(index), timeout=30)

    def healthy(self) -> bool:
        """Whether every node runs, routes to every other and says JetStream is current (its ``/healthz``: the meta
        group and every stream and consumer replica it holds have caught up)."""
        if not all(node.alive() for node in self.nodes):
            return False
        return _formed(self) and all(
            self.monitor(index, "/healthz").get("status") == "ok" for index in range(1, len(self.nodes) + 1)
        )

    def subscribed(self, index: int, client_id: str, subjects: Collection[str]) -> bool:
        """Whether MQTT client ``client_id`` on node ``index`` (1-based) holds the subscriptions ``subjects`` and a
        JetStream delivery subject for each: a QoS 1 filter becomes a replicated consumer after the SUBACK, and a
        message published before that exists never reaches a client whose session is new."""
        found = self.subscriptions(index, client_id)
        deliveries = [s for s in found if s.startswith("$MQTT.sub.")]
        return set(subjects) <= set(found) and len(deliveries) >= len(subjects)

    def log(self) -> str:
        """Every node's log so far, one after the other."""
        return "".join(f"--- {node.name}\n{node.log()}" for node in self.nodes)

    def stop(self) -> list[int]:
        """Stop every node; their exit codes (0: a clean shutdown)."""
        # nats-server exits 0 after SIGINT, 1 after SIGTERM (both shut it down cleanly).
        return [node.stop(signal.SIGINT) for node in reversed(self.nodes)]


def _formed(cluster: NatsCluster) -> bool:
    size = len(cluster.nodes)
    for index in range(1, size + 1):
        if cluster.monitor(index, "/routez").get("num_routes") != size - 1:
            return False
        meta = cluster.monitor(index, "/jsz").get("meta_cluster")
        if not isinstance(meta, dict) or not meta.get("leader"):
            return False
    return True


def mqtt_login_works(port: int, user: str = "observer", timeout: float = 5.0) -> bool:
    """Whether ``user`` gets a successful CONNACK from the MQTT listener on ``port`` within ``timeout``."""
    outcome: queue.Queue[bool] = queue.Queue()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{user}-ready", protocol=mqtt.MQTTv311)
    client.username_pw_set(**login(user))
    client.on_connect = lambda c, u, f, rc, p: outcome.put(not rc.is_failure)
    try:
        client.connect(LOOPBACK, port, 30)
        client.loop_start()
        return outcome.get(timeout=timeout)
    except (OSError, queue.Empty):
        return False
    finally:
        client.disconnect()
        client.loop_stop()
        client._reset_sockets()  # paho 2.2 leaves its wake-up socket pair to the garbage collector


def start_nats_cluster(work_dir: Path, *, meters: Sequence[str] = TEST_METERS, nodes: int = 3) -> NatsCluster:
    """Start a cluster of ``nodes`` nats-server nodes on free loopback ports, its files in ``work_dir``, letting in
    the service users and ``meters`` with the test run's secret; stop it with ``NatsCluster.stop``."""
    ports = free_ports(4 * nodes)
    layout = ClusterLayout(LOOPBACK, tuple(NodePorts(*ports[4 * k : 4 * k + 4]) for k in range(nodes)), work_dir)
    rules = fleet_rules(load_or_create_secret(fleet_secret()), meters, DEFAULT_HA_PREFIX)
    users = nats_users(rules, [bcrypt.gensalt(TEST_BCRYPT_COST) for _ in rules])
    work_dir.mkdir(parents=True, exist_ok=True)
    for name, text in cluster_configs(layout, users).items():
        (work_dir / name).write_text(text)
    procs: list[Proc] = []
    cluster = NatsCluster(procs, layout)
    try:
        for index in range(1, nodes + 1):
            argv = [nats_binary(), "-c", str(work_dir / config_name(index))]
            procs.append(start(f"nats-{node_name(index)}", argv, work_dir, port=layout.nodes[index - 1].mqtt))
        for proc in procs:
            proc.wait_port(proc.port or 0, timeout=30)
        wait_until(lambda: _formed(cluster), 60, "the NATS cluster formed (routes, JetStream meta leader)")
        # The first MQTT login of the account creates its replicated streams: it may wait for the JetStream groups.
        if not any(mqtt_login_works(cluster.mqtt_port(1), timeout=READY_LOGIN_S) for _ in range(READY_ATTEMPTS)):
            raise TimeoutError(f"no MQTT login through node 1 in {READY_ATTEMPTS} attempts:\n{cluster.log()[-5000:]}")
    except BaseException:
        cluster.stop()
        raise
    return cluster
