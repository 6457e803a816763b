"""simulator.live.publisher.FleetLoop without a broker: with jitter a meter's reading of second t is taken at t + 1 +
its offset, a pass touches only the meters due, a late loop catches up in order, and connects are paced.

The loop is stepped by hand with a fake wall clock; no connection is ever opened (meters stay disconnected, so their
readings are held for the backlog, which is what these tests read)."""

from __future__ import annotations

from collections.abc import Callable
from zoneinfo import ZoneInfo

import pytest

from config.settings import BrokerAddress
from simulator.live.clock import SimClock
from simulator.live.publisher import FleetLoop
from simulator.live.schedule import jitter_offset
from simulator.meters.fleet import build_meters, fleet_specs

T0 = 1_704_067_200
BROKER = BrokerAddress("127.0.0.1", 9)  # never connected to in these tests


class FakeWall:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def fleet_loop(size: int, *, jitter: bool = True, connect_rate: float = 500.0) -> tuple[FleetLoop, FakeWall]:
    wall = FakeWall()
    meters = build_meters(fleet_specs(["A", "B", "C"], size), 1, ZoneInfo("UTC"), T0)
    clock = SimClock(wall_origin=wall.now, sim_origin=T0, speed=1.0)
    return FleetLoop(meters, BROKER, clock, wall=wall, jitter=jitter, connect_rate=connect_rate), wall


def held(loop: FleetLoop) -> dict[str, int]:
    """Readings each meter has recorded so far (all held: nothing is connected)."""
    return {m: link.delivery.waiting for m, link in loop.links.items() if link.delivery.waiting}


def test_each_meter_takes_its_reading_at_its_own_offset_into_the_next_second() -> None:
    loop, wall = fleet_loop(30)
    offsets = {m: jitter_offset(m) for m in loop.links}
    for at in (0.25, 0.5, 0.75, 0.999):
        wall.now = 100.0 + 1.0 + at  # the first second [T0, T0 + 1) has ended `at` ago
        loop._step(wall.now)
        assert set(held(loop)) == {m for m, offset in offsets.items() if offset <= at}


def test_without_jitter_every_meter_is_due_at_the_end_of_the_second() -> None:
    loop, wall = fleet_loop(30, jitter=False)
    wall.now = 100.999
    loop._step(wall.now)
    assert held(loop) == {}
    wall.now = 101.0
    loop._step(wall.now)
    assert held(loop) == dict.fromkeys(loop.links, 1)


def test_a_late_loop_catches_up_every_second_in_order() -> None:
    loop, wall = fleet_loop(9)
    wall.now = 100.0 + 10.0 + 1.0  # ten seconds late: every meter owes readings of T0 .. T0 + 9 (and maybe T0 + 10)
    loop._step(wall.now)
    for meter_id, link in loop.links.items():
        expected = 11 if jitter_offset(meter_id) == 0.0 else 10
        assert link.delivery.waiting == expected
        assert list(link.delivery.backlog) == [[0, expected - 1]]  # consecutive seqs, oldest first


def test_the_due_queue_holds_each_meter_once_at_its_next_due_time() -> None:
    loop, wall = fleet_loop(12)
    wall.now = 103.0
    loop._step(wall.now)
    assert len(loop._due) == 12
    nxt = loop._due.next_at()
    assert nxt is not None
    assert nxt > wall.now  # nothing due is left behind after a pass
    assert nxt == min(loop.clock.wall_at(T0 + 3 + jitter_offset(m)) for m in loop.links)


def test_connects_are_paced() -> None:
    loop, wall = fleet_loop(200, connect_rate=100.0)
    attempted: list[str] = []

    def recorder(meter_id: str) -> Callable[[float], bool]:
        def try_connect(now: float) -> bool:
            attempted.append(meter_id)
            return True

        return try_connect

    for link in loop.links.values():
        link.try_connect = recorder(link.meter_id)  # type: ignore[method-assign,assignment]
    loop._connect_due(wall.now)
    assert len(attempted) == 25  # a burst of a quarter of a second's allowance
    wall.now += 0.5
    loop._connect_due(wall.now)
    assert len(attempted) == 50  # refilled to the burst, no more
    for _ in range(20):
        wall.now += 0.1
        loop._connect_due(wall.now)
    assert len(attempted) == 200
    assert len(set(attempted)) == 200


def test_a_warm_up_hold_steps_no_meter_until_it_ends_then_catches_up_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    wall = FakeWall()
    warmup_s = 600  # the meters begin ten minutes in the past, as a warm-up builds them
    meters = build_meters(fleet_specs(["A", "B", "C"], 3), 1, ZoneInfo("UTC"), T0 - warmup_s)
    clock = SimClock(wall_origin=wall.now, sim_origin=T0, speed=1.0)
    loop = FleetLoop(meters, BROKER, clock, wall=wall, hold_s=5.0)
    monkeypatch.setattr(loop, "_connect_due", lambda now: None)  # nothing connects here
    monkeypatch.setattr(loop, "_service", lambda until: None)  # no sockets to wait on
    wall.now = 104.999
    for _ in range(5):
        loop._pass()
    assert held(loop) == {}  # the whole past is due, and nothing was stepped
    wall.now = 105.0
    for _ in range(10):  # bounded: 200 readings per meter per pass, 605 due
        loop._pass()
    for link in loop.links.values():
        assert list(link.delivery.backlog) == [[0, warmup_s + 4]]  # every second from T0 - 600 to T0 + 4, in order
