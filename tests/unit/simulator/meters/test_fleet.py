"""simulator.meters.fleet: Meter.due emits only finished seconds, in order, at most ``limit``, with the profile's
values."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import numpy as np
import pytest

from config.errors import ConfigError
from config.households import CLASSIC
from simulator.meters.fleet import MAX_FLEET, Meter, build_meters, fleet_specs
from simulator.profiles.classic import classic_seconds

T0 = 1_704_067_200
UTC_ZONE = ZoneInfo("UTC")
SEED = 2024


def meter_a(start: float = T0 + 0.5) -> Meter:
    return build_meters(fleet_specs(["A"]), SEED, UTC_ZONE, start)[0]


def test_build_meters() -> None:
    meters = build_meters(fleet_specs(["a", "B", "C"]), SEED, UTC_ZONE, T0 + 10.9)
    assert [m.meter_id for m in meters] == ["A", "B", "C"]
    assert [m.spec.key for m in meters] == [(0,), (1,), (2,)]
    assert all(m.state.next_ts == T0 + 10 and m.state.seq == 0 for m in meters)
    assert meters[0].next_due_sim() == T0 + 11.0


@pytest.mark.parametrize(("sim_now", "count"), [(T0, 0), (T0 + 0.999, 0), (T0 + 1.0, 1), (T0 + 1.5, 1), (T0 + 7, 7)])
def test_due_only_for_ended_seconds(sim_now: float, count: int) -> None:
    readings = meter_a().due(sim_now, limit=100)
    assert [r.ts for r in readings] == [T0 + i for i in range(count)]
    assert [r.seq for r in readings] == list(range(count))


def test_due_respects_limit_and_continues_in_order() -> None:
    meter = meter_a()
    first = meter.due(T0 + 10, limit=3)
    rest = meter.due(T0 + 10, limit=100)
    assert [r.ts for r in first] == [T0, T0 + 1, T0 + 2]
    assert [r.ts for r in rest] == [T0 + i for i in range(3, 10)]
    assert [r.seq for r in first + rest] == list(range(10))
    assert meter.due(T0 + 10, limit=100) == []
    assert meter.due(T0 + 20, limit=0) == []
    assert meter.next_due_sim() == T0 + 11


def test_due_values_are_the_profile_over_a_block_boundary() -> None:
    start = T0 + 6 * 3600 - 3  # just before A's geyser comes on and before a 60 s block boundary
    meter = meter_a(start)
    readings = meter.due(start + 130, limit=1000)
    assert len(readings) == 130
    profile = classic_seconds(CLASSIC["A"], start, 130, UTC_ZONE, SEED, (0,))
    assert np.allclose([r.overall_w for r in readings], profile.overall_kw * 1000)
    assert [r.geyser_w for r in readings[:3]] == [0.0] * 3
    assert {r.geyser_w for r in readings[3:]} == {3000.0}
    assert {r.ac_w for r in readings} == {1500.0}
    energies = [r.overall_kwh for r in readings]
    assert energies == sorted(energies)
    assert energies[-1] == pytest.approx(profile.overall_kw.sum() / 3600)


def test_a_restarted_meter_gives_the_same_values() -> None:
    early = meter_a(T0).due(T0 + 200, limit=1000)
    late = meter_a(T0 + 150).due(T0 + 200, limit=1000)
    assert [r.overall_w for r in late] == [r.overall_w for r in early[150:]]
    assert late[0].seq == 0


def test_meters_of_one_fleet_differ() -> None:
    a, c = build_meters(fleet_specs(["A", "C"]), SEED, UTC_ZONE, T0)
    # At 00:00 UTC both run AC at 1.5 kW and no geyser: only the random part can tell them apart.
    overall_a = [r.overall_w for r in a.due(T0 + 30, limit=100)]
    overall_c = [r.overall_w for r in c.due(T0 + 30, limit=100)]
    assert overall_a != overall_c


def test_fleet_specs_ids_and_keys() -> None:
    specs = fleet_specs(["A", "b", "C"], 7)
    assert [s.meter_id for s in specs] == ["A-0001", "B-0001", "C-0001", "A-0002", "B-0002", "C-0002", "A-0003"]
    assert [s.template for s in specs] == ["A", "B", "C", "A", "B", "C", "A"]
    assert specs[3].key == (0, 2)
    # Growing the fleet keeps every existing member's id and key.
    assert fleet_specs(["A", "B", "C"], 30)[:7] == specs


def test_fleet_specs_rejects_duplicates_and_bad_sizes() -> None:
    from config.errors import ConfigError

    with pytest.raises(ConfigError):
        fleet_specs(["A", "a"])
    with pytest.raises(ConfigError):
        fleet_specs(["A"], 0)


def test_unknown_profile_is_a_config_error() -> None:
    from config.errors import ConfigError
    from simulator.profiles.factory import make_profile

    with pytest.raises(ConfigError, match="unknown profile"):
        make_profile("nope", fleet_specs(["A"])[0], UTC_ZONE, 1)


@pytest.mark.parametrize("profile", ["classic", "realistic"])
def test_next_minute_made_ahead_gives_the_same_readings(profile: str) -> None:
    """A meter makes its next minute ahead, at its own second of the current one; one stepped a second at a time (so
    it makes each next minute ahead) and one asked for 5 minutes at once give the same readings."""
    specs = fleet_specs(["A", "B", "C"], 6)
    stepped = build_meters(specs, 1, UTC_ZONE, T0 + 7, profile)
    at_once = build_meters(specs, 1, UTC_ZONE, T0 + 7, profile)
    assert len({m.prefetch_s for m in stepped}) > 1  # spread over the minute
    for slow, fast in zip(stepped, at_once, strict=True):
        one_by_one = [r for s in range(1, 301) for r in slow.due(T0 + 7 + s, limit=5)]
        assert one_by_one == fast.due(T0 + 7 + 300, limit=1000)
        assert len(one_by_one) == 300


def test_fleet_offset_splits_one_fleet_over_hosts() -> None:
    """Two hosts with --fleet 5 and --fleet 5 --fleet-offset 5 run exactly the meters of --fleet 10, values too."""
    whole = fleet_specs(["A", "B", "C"], 10)
    parts = fleet_specs(["A", "B", "C"], 5) + fleet_specs(["A", "B", "C"], 5, offset=5)
    assert parts == whole
    assert [s.meter_id for s in parts[4:7]] == ["B-0002", "C-0002", "A-0003"]
    one = build_meters(whole[7:8], SEED, UTC_ZONE, T0)[0]
    other = build_meters(fleet_specs(["A", "B", "C"], 1, offset=7), SEED, UTC_ZONE, T0)[0]
    assert one.due(T0 + 60, 100) == other.due(T0 + 60, 100)


def test_fleet_offset_bounds() -> None:
    with pytest.raises(ConfigError, match="needs a fleet size"):
        fleet_specs(["A"], None, offset=3)
    with pytest.raises(ConfigError, match="offset \\+ fleet size"):
        fleet_specs(["A"], MAX_FLEET, offset=1)
