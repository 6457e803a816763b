"""A NATS JetStream cluster as the fleet's MQTT broker: one nats-server config per node (pure: no file or network I/O).

``python -m broker nats-config --out DIR`` writes them (``node-1.conf`` ... ``node-N.conf``); each node runs
``nats-server -c DIR/node-k.conf``. Node k listens on the base ports + k - 1 (NATS clients, cluster routes, HTTP
monitoring, MQTT), routes to every other node, keeps JetStream's files in ``DIR/node-k/jetstream`` and replicates the
MQTT streams (sessions, retained messages, QoS 1 messages) on ``min(3, N)`` nodes. Only the fleet's users get in
(``config.credentials.nats_users``: bcrypt, MQTT connections only, the same topic rules as amqtt and Mosquitto); there
is no anonymous user. The cluster's routes are not authenticated: bind them to loopback (the default) or to a private
network only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from config.errors import ConfigError

CLUSTER_NAME: Final = "fleet"
DEFAULT_NODES: Final = 3
DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_CLIENT_PORT: Final = 4222
DEFAULT_CLUSTER_PORT: Final = 6222
DEFAULT_HTTP_PORT: Final = 8222
DEFAULT_MQTT_PORT: Final = 1883
MAX_NODES: Final = 9  # a JetStream cluster larger than this is not what a config generator on one machine is for
MQTT_REPLICAS: Final = 3  # JetStream's largest sensible replication; fewer on a smaller cluster
# nats-server lets one MQTT session's QoS 1 subscriptions have at most 65,535 unacknowledged messages in all, each
# subscription counting its max_ack_pending (1,024 by default: 63 subscriptions; the 64th is refused, SUBACK 0x80). A
# sharded bridge subscribes once per meter it owns, so the per-subscription allowance is set from the fleet's size: a
# bridge owning every user's topics, plus ``SESSION_EXTRA_FILTERS`` of its own, still fits. An unsharded bridge has 3.
MAX_SESSION_ACK_PENDING: Final = 65_535
DEFAULT_ACK_PENDING: Final = 1024
SESSION_EXTRA_FILTERS: Final = 8


def max_ack_pending(users: int) -> int:
    """Each QoS 1 subscription's allowance of unacknowledged messages, for a cluster letting in ``users`` users."""
    return max(1, min(DEFAULT_ACK_PENDING, MAX_SESSION_ACK_PENDING // (users + SESSION_EXTRA_FILTERS)))


@dataclass(frozen=True, slots=True)
class NodePorts:
    """The four TCP ports of one node: NATS clients, cluster routes, HTTP monitoring, MQTT."""

    client: int
    cluster: int
    http: int
    mqtt: int

    def __post_init__(self) -> None:
        for name in ("client", "cluster", "http", "mqtt"):
            port = getattr(self, name)
            if not 1 <= port <= 65535:
                raise ConfigError(f"--{name}-port", f"port {port} is not in 1..65535")


@dataclass(frozen=True, slots=True)
class ClusterLayout:
    """Where each node of the cluster listens (``host``, one ``NodePorts`` per node) and keeps its files (``out``)."""

    host: str
    nodes: tuple[NodePorts, ...]
    out: Path

    def __post_init__(self) -> None:
        if not 1 <= len(self.nodes) <= MAX_NODES:
            raise ConfigError("--nodes", f"{len(self.nodes)} nodes: expected 1..{MAX_NODES}")
        if not self.host or any(c in self.host for c in " \"'/:{}[],#"):
            raise ConfigError("--host", f"not a host name or IPv4 address: {self.host!r}")
        ports = [port for node in self.nodes for port in (node.client, node.cluster, node.http, node.mqtt)]
        if len(set(ports)) != len(ports):
            raise ConfigError("--nodes", f"two listeners of the cluster share a port: {sorted(ports)}")


def layout_from_bases(
    out: Path,
    nodes: int = DEFAULT_NODES,
    *,
    host: str = DEFAULT_HOST,
    client_port: int = DEFAULT_CLIENT_PORT,
    cluster_port: int = DEFAULT_CLUSTER_PORT,
    http_port: int = DEFAULT_HTTP_PORT,
    mqtt_port: int = DEFAULT_MQTT_PORT,
) -> ClusterLayout:
    """The layout of ``nodes`` nodes whose node k (1-based) listens on each base port + k - 1."""
    if not 1 <= nodes <= MAX_NODES:
        raise ConfigError("--nodes", f"{nodes} nodes: expected 1..{MAX_NODES}")
    return ClusterLayout(
        host,
        tuple(NodePorts(client_port + k, cluster_port + k, http_port + k, mqtt_port + k) for k in range(nodes)),
        out,
    )


def node_name(index: int) -> str:
    """The ``server_name`` of node ``index`` (1-based): ``node-<index>``."""
    return f"node-{index}"


def config_name(index: int) -> str:
    """The config file name of node ``index`` (1-based): ``node-<index>.conf``."""
    return f"{node_name(index)}.conf"


def _quoted(value: str) -> str:
    # NATS's config syntax accepts JSON strings; quoting keeps "$..." values (bcrypt hashes, $MQTT subjects) literal.
    return json.dumps(value)


def node_config(layout: ClusterLayout, index: int, users: Sequence[dict[str, Any]]) -> str:
    """The nats-server config of node ``index`` (1-based) of ``layout``, letting in exactly ``users``
    (``config.credentials.nats_users``)."""
    if not 1 <= index <= len(layout.nodes):
        raise ValueError(f"node {index} is not in 1..{len(layout.nodes)}")
    ports = layout.nodes[index - 1]
    host = layout.host
    routes = [_quoted(f"nats-route://{host}:{other.cluster}") for k, other in enumerate(layout.nodes, 1) if k != index]
    replicas = min(MQTT_REPLICAS, len(layout.nodes))
    user_lines = "".join(f"    {json.dumps(user)}\n" for user in users)
    return (
        f"# nats-server config of {node_name(index)} of {len(layout.nodes)}, written by python -m broker nats-config.\n"
        f"server_name: {_quoted(node_name(index))}\n"
        f"listen: {_quoted(f'{host}:{ports.client}')}\n"
        f"http: {_quoted(f'{host}:{ports.http}')}\n"
        "cluster {\n"
        f"  name: {_quoted(CLUSTER_NAME)}\n"
        f"  listen: {_quoted(f'{host}:{ports.cluster}')}\n"
        f"  routes: [{', '.join(routes)}]\n"
        "}\n"
        "jetstream {\n"
        # nats-server adds "jetstream" to store_dir: the files land in <out>/node-k/jetstream.
        f"  store_dir: {_quoted(str(layout.out / node_name(index)))}\n"
        "}\n"
        "mqtt {\n"
        f"  listen: {_quoted(f'{host}:{ports.mqtt}')}\n"
        f"  stream_replicas: {replicas}\n"
        f"  max_ack_pending: {max_ack_pending(len(users))}\n"
        "}\n"
        "authorization {\n"
        "  users: [\n"
        f"{user_lines}"
        "  ]\n"
        "}\n"
    )


def cluster_configs(layout: ClusterLayout, users: Sequence[dict[str, Any]]) -> dict[str, str]:
    """Every node's config: file name -> text."""
    return {config_name(k): node_config(layout, k, users) for k in range(1, len(layout.nodes) + 1)}
