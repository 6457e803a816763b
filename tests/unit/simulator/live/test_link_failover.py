"""simulator.live.link.MeterLink with a list of brokers: each meter starts on its own node, moves on to the next
of its own order when an attempt fails or its connection is lost (round robin, with the back-off), and the meters of a
dead node spread over the others. Refusals come from real closed loopback ports; nothing is ever accepted."""

from __future__ import annotations

import socket
from collections import Counter

from config.settings import BrokerAddress, parse_broker_urls
from config.shard import shard_of
from simulator.live.link import RECONNECT_MIN_S, MeterLink
from tests.support.drive import service

WAIT_S = 10.0


def closed_ports(count: int) -> list[int]:
    """Loopback ports nothing listens on (bound, then closed at once)."""
    ports = []
    for _ in range(count):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
    return ports


def refused(link: MeterLink) -> None:
    """One attempt of ``link``, driven until the refusal is known (at once, or when the socket says so)."""
    if not link.try_connect(link.next_attempt):
        return
    assert service(link.client, lambda: link.client.socket() is None, WAIT_S), "the refusal not seen"


def test_a_refused_meter_moves_round_robin_with_backoff() -> None:
    ports = closed_ports(3)
    broker = parse_broker_urls(",".join(f"mqtt://u{p}:pw@127.0.0.1:{p}" for p in ports))
    link = MeterLink("A", broker)

    def on_lost(lost: MeterLink) -> None:  # what FleetLoop._lost does: back off
        lost.retry_later(lost.next_attempt, 0.0)

    link.on_lost = on_lost
    order = [a.port for a in broker.order_for("A")]
    assert link.broker.port == order[0] == ports[shard_of("A", 3)]
    tried = []
    for _ in range(4):
        tried.append(link.broker.port)
        assert link.client.username == f"u{link.broker.port}"  # each URL's own login
        refused(link)
    assert tried == [*order, order[0]]
    assert link.backoff > RECONNECT_MIN_S  # every failure doubled it: no stampede onto the next node
    assert link.client.socket() is None


def test_a_lost_connection_moves_on_and_one_broker_stays_put() -> None:
    broker = parse_broker_urls("mqtt://127.0.0.1:1,mqtt://127.0.0.1:2")
    link = MeterLink("A", broker)
    first = link.broker
    assert link.client.on_disconnect is not None
    link.client.on_disconnect("connection closed by the broker")
    assert link.broker != first
    assert link.broker in broker.addresses()
    alone = MeterLink("A", BrokerAddress("127.0.0.1", 1))
    assert alone.client.on_disconnect is not None
    alone.client.on_disconnect("connection closed by the broker")
    assert alone.broker == BrokerAddress("127.0.0.1", 1)


def test_the_meters_of_a_dead_node_spread_over_the_others() -> None:
    """Of 3 nodes, node 1 dies: its meters move each to its own next node, both others get a fair share."""
    broker = parse_broker_urls("mqtt://127.0.0.1:1,mqtt://127.0.0.1:2,mqtt://127.0.0.1:3")
    links = [MeterLink(f"M{i}", broker) for i in range(600)]
    start = Counter(link.broker.port for link in links)
    assert all(150 <= start[port] <= 250 for port in (1, 2, 3))  # spread evenly by id
    orphans = [link for link in links if link.broker.port == 1]
    for link in orphans:
        assert link.client.on_disconnect is not None
        link.client.on_disconnect("connection closed by the broker")
    moved = Counter(link.broker.port for link in orphans)
    assert set(moved) == {2, 3}
    assert all(moved[port] >= len(orphans) * 0.35 for port in (2, 3))
