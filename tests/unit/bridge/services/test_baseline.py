"""bridge.services.baseline: whole-span and hour-of-day baselines from history, cached, refreshed without blocking
requests."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from bridge.ingest.history import History
from bridge.services.baseline import Baselines, window_status
from bridge.windows.aggregate import make_window
from config.wire import Reading

UTC_ZONE = ZoneInfo("UTC")
T0 = 1_704_067_200  # 2024-01-01T00:00:00Z


def _history(hours: int, ac_by_hour: dict[int, float]) -> History:
    """A meter whose AC is ``ac_by_hour[hour]`` kW (0 otherwise) and Overall 1 kW above it, ``hours`` hours long."""
    history = History(3 * 86_400)
    for second in range(hours * 3600):
        ac = ac_by_hour.get(second // 3600 % 24, 0.0)
        history.add(Reading("A", second, T0 + second, ac * 1000, 0.0, (ac + 1.0) * 1000, 0.0, 0.0, 0.0))
    return history


def test_hourly_baselines_judge_each_hour_by_its_own_normal() -> None:
    history = _history(3, {1: 1.5})  # AC only in the 01:00 hour
    baselines = Baselines(history, UTC_ZONE, grace_s=0)
    baseline = baselines.get("A", 60)
    assert baseline is not None
    assert set(baseline.hourly) == {0, 1, 2}
    assert baseline.hourly[1].channels["AC"].p75 == 1.5
    assert baseline.hourly[0].channels["AC"].p75 == 0.0
    assert baseline.hourly[1].window_count == 60
    assert baseline.stats.window_count == 180  # grace 0: the last window is final once its last second is in
    samples, present = history.samples("A", T0 + 3600, T0 + 3660)
    window = make_window("A", 60, T0 + 3600, T0 + 3660, samples, present)
    spike = make_window("A", 60, T0, T0 + 60, samples * 3, present)  # 4.5 kW of AC at midnight: unheard of
    assert window_status(window, baseline, UTC_ZONE, by_hour=True)[0]["AC"] == "Green"
    assert window_status(spike, baseline, UTC_ZONE, by_hour=True)[0]["AC"] == "Red"
    status, level = window_status(window, None, UTC_ZONE)
    assert status == {"AC": "Green", "Geyser": "Green", "Overall": "Green"}
    assert level == "Green"


def test_want_does_not_compute_and_refresh_does() -> None:
    history = _history(1, {})
    baselines = Baselines(history, UTC_ZONE, grace_s=0, refresh_s=60)
    baselines.want("A", 60)
    assert baselines._cache == {}  # setup only asks
    assert baselines.refresh_stale() == 1
    first = baselines.get("A", 60)
    assert first is not None
    assert baselines.refresh_stale() == 0  # nothing moved
    for second in range(3600, 3600 + 61):  # a simulated minute later
        history.add(Reading("A", second, T0 + second, 0.0, 0.0, 1000.0, 0.0, 0.0, 0.0))
    assert baselines.get("A", 60) is first  # requests get the cached one
    assert baselines.refresh_stale() == 1
    assert baselines.get("A", 60) is not first


def test_no_baseline_before_a_window_is_complete() -> None:
    assert Baselines(History(3600), UTC_ZONE, grace_s=1).get("A", 60) is None


@pytest.mark.parametrize("interval", [1, 7, 60, 900, 3600])
def test_critical_value_never_below_p75(interval: int) -> None:
    history = _history(8, {1: 1.5, 2: 1.5, 5: 3.0})
    baseline = Baselines(history, UTC_ZONE, grace_s=0).get("A", interval)
    assert baseline is not None
    for stats in (baseline.stats, *baseline.hourly.values()):
        for channel in stats.channels.values():
            assert channel.critical >= channel.p75
