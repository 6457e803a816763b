"""simulator.live.sockets.SocketService's selector registrations when the kernel hands a closed socket's descriptor
number to another meter's new socket, as it does at once (the lowest free number). Seen in a 2,000-meter run on the NATS
cluster: nodes closing connections in a burst, the meters reconnecting, and ``register`` raising KeyError ("already
registered") for a meter whose descriptor still stood under a closed socket of a meter not handled yet; the loop, and
every meter with it, stopped. Real sockets to a loopback listener the test owns; no broker."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest

from config.settings import parse_broker_urls
from simulator.live.clock import SimClock
from simulator.live.link import MeterLink
from simulator.live.publisher import FleetLoop
from simulator.meters.fleet import build_meters, fleet_specs

T0 = 1_700_000_000.0


@pytest.fixture
def loop() -> Iterator[FleetLoop]:
    with socket.create_server(("127.0.0.1", 0), backlog=16) as listener:
        broker = parse_broker_urls(f"mqtt://u:pw@127.0.0.1:{listener.getsockname()[1]}")
        meters = build_meters(fleet_specs(["A", "B"], 2), 1, ZoneInfo("UTC"), T0)
        fleet = FleetLoop(meters, broker, SimClock(wall_origin=0.0, sim_origin=T0, speed=1.0))
        try:
            yield fleet
        finally:
            for link in fleet.links.values():
                link.client.disconnect()


def _connect(loop: FleetLoop, link: MeterLink) -> socket.socket:
    assert link.try_connect(link.next_attempt)
    sock = link.client.socket()
    assert isinstance(sock, socket.socket)
    loop._touched[link.meter_id] = link
    loop._sync_registrations()
    return sock


def test_a_reused_descriptor_of_an_untouched_closed_socket_is_taken_over(loop: FleetLoop) -> None:
    first, second = loop.links.values()
    old = _connect(loop, first)
    fd = old.fileno()
    first.client.disconnect()  # closed; the loop has not handled that meter since
    new = _connect(loop, second)  # the lowest free descriptor: the closed socket's
    assert new.fileno() == fd
    assert loop._selector.get_key(new).data is second
    loop._touched[first.meter_id] = first
    loop._sync_registrations()
    assert loop._selector.get_key(new).data is second


def test_a_reused_descriptor_of_a_touched_closed_socket(loop: FleetLoop) -> None:
    """Both meters handled in the same pass, the new socket's meter first."""
    first, second = loop.links.values()
    _connect(loop, first)
    first.client.disconnect()
    assert second.try_connect(second.next_attempt)
    loop._touched = {second.meter_id: second, first.meter_id: first}
    loop._sync_registrations()
    assert loop._selector.get_key(second.client.socket()).data is second  # type: ignore[arg-type]
    assert len(loop._selector.get_map()) == 1
