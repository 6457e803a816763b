"""simulator.profiles.appliances: base load, fridge cycling, lighting by occupancy and daylight, desks, events,
washer."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from config.equipment import Appliances
from config.realistic import DEFAULT_CLIMATE, Presence, household_model
from simulator.localday import local_day
from simulator.profiles.appliances import events, fridge, other_loads, washer
from simulator.profiles.realistic import RealisticProfile
from simulator.profiles.signals import steps_from_changes
from simulator.profiles.weather import day_weather

KOLKATA = ZoneInfo("Asia/Kolkata")
SEED = 3
WEEKDAYS = [date(2024, 6, 3) + timedelta(days=k) for k in (0, 1, 2, 3, 4, 7, 8)]
WEEKENDS = [date(2024, 6, 8), date(2024, 6, 9), date(2024, 1, 13), date(2024, 1, 14)]


def loads(hid: str, day: date, app: Appliances | None = None) -> np.ndarray:
    """Everything-else power (kW) of a classic household on ``day``, optionally with other appliances."""
    model = household_model(hid)
    p = RealisticProfile(model, KOLKATA, SEED, ("ABC".index(hid),))
    local = local_day(day, KOLKATA)
    steps = other_loads(
        app or model.appliances,
        p.schedule(day),
        day_weather(DEFAULT_CLIMATE, local, SEED),
        local,
        np.random.default_rng(day.toordinal()),
    )
    return steps.expand(0, local.n_s, local.n_s)


def test_closed_office_is_base_load_and_fridge() -> None:
    app = household_model("B").appliances
    for day in WEEKENDS:
        other = loads("B", day)
        levels = set(np.round(other, 9).tolist())
        assert levels <= {
            round(app.standby_kw, 9),
            round(app.standby_kw + app.fridge_kw, 9),
            round(app.standby_kw + app.fridge_kw * app.fridge_surge_factor, 9),
        }
        assert other.min() == pytest.approx(app.standby_kw)


def test_fridge_cycles_with_its_duty() -> None:
    app = Appliances()
    rng = np.random.default_rng(9)
    n = 86_400
    for mean_c, scale in ((25.0, 1.0), (35.0, 1.3)):
        times, deltas = fridge(app, mean_c, n, rng)
        power = steps_from_changes(times, deltas, n).expand(0, n, n)
        on = power > 0.05
        starts = np.flatnonzero(np.diff(on.astype(np.int8)) == 1)
        duty = scale * app.fridge_on_s / (scale * app.fridge_on_s + app.fridge_off_s)
        assert on.mean() == pytest.approx(duty, abs=0.06)
        assert len(starts) == pytest.approx(n / (scale * app.fridge_on_s + app.fridge_off_s), abs=5)
        assert power.max() == pytest.approx(app.fridge_kw * app.fridge_surge_factor)


def test_nothing_but_base_and_fridge_while_the_day_worker_is_out() -> None:
    app = household_model("A").appliances
    for day in WEEKDAYS:
        other = loads("A", day)
        away = other[int(10.5 * 3600) : 17 * 3600]
        assert away.max() <= app.standby_kw + app.fridge_kw * app.fridge_surge_factor + 1e-9
        evening = other[int(19.5 * 3600) : int(22.5 * 3600)]
        assert evening.mean() > app.standby_kw + app.fridge_kw * 0.3 + 0.1  # lights and plug loads at home


def test_lights_only_when_dark_and_someone_awake() -> None:
    base = household_model("A").appliances
    lights_only = replace(
        base, fridge_kw=0.0, plug_kw=0.0, kettle_per_day=0.0, microwave_per_day=0.0, washer_per_day=0.0
    )
    p = RealisticProfile(household_model("A"), KOLKATA, SEED, (0,))
    for day in WEEKDAYS[:3] + WEEKENDS[:2]:
        other = loads("A", day, lights_only)
        local = local_day(day, KOLKATA)
        weather = day_weather(DEFAULT_CLIMATE, local, SEED)
        t = np.arange(local.n_s)
        awake = p.schedule(day).presence_at(t) == Presence.AWAKE
        dawn, dusk = round(weather.sunrise_wall_h * 3600) + 1800, round(weather.sunset_wall_h * 3600) - 1800
        dark = (t < dawn) | (t >= dusk)
        lit = other > base.standby_kw + 1e-9
        assert not np.any(lit & ~(awake & dark))
        assert lit.sum() > 0.9 * np.sum(awake & dark)
        assert other.max() <= base.standby_kw + base.lighting_kw + 1e-9


def test_office_desks_and_lights_while_staffed() -> None:
    app = household_model("B").appliances
    for day in WEEKDAYS:
        other = loads("B", day)
        staffed = other[10 * 3600 : int(15.5 * 3600)]
        assert staffed.min() >= app.standby_kw + 0.3 * app.lighting_kw + 0.7 * app.desks * app.desk_kw - 1e-9
        night = other[: 6 * 3600]
        assert night.max() <= app.standby_kw + app.fridge_kw * app.fridge_surge_factor + 1e-9


def test_events_fall_in_their_windows() -> None:
    rng = np.random.default_rng(4)
    counts = []
    for _ in range(300):
        times, deltas = events([(1000, 2000), (5000, 5500)], 2.0, 1.8, 150.0, rng)
        starts = times[deltas > 0]
        ends = times[deltas < 0]
        assert all(1000 <= s < 2000 or 5000 <= s < 5500 for s in starts.tolist())
        assert np.all((ends - starts >= 105) & (ends - starts <= 195))
        counts.append(starts.size)
    assert np.mean(counts) == pytest.approx(2.0, abs=0.25)


def test_washer_cycle_shape() -> None:
    app = replace(Appliances(), washer_per_day=1.0, washer_hot=1.0)
    times, deltas = washer(app, [(3600, 7200)], np.random.default_rng(1))
    n = 86_400
    power = steps_from_changes(times, deltas, n).expand(0, n, n)
    start = int(np.flatnonzero(power > 0)[0])
    assert 3600 <= start < 7200
    assert power[start + 10] == pytest.approx(app.washer_heat_kw + app.washer_motor_kw)  # heating while tumbling
    total_s = int(app.washer_heat_s + app.washer_wash_s + app.washer_spin_s)
    assert power[start + total_s - 10] == pytest.approx(app.washer_spin_kw)
    assert power[start + total_s + 1] == 0.0
    assert 0.5 < power.sum() / 3.6e6 * 1000 < 1.0  # kWh of a hot 40 C wash
