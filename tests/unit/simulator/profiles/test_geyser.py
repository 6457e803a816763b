"""The geyser of the realistic profile: tank in its band, element on after draws and off at the set-point, energy
balance, draws in the household's geyser hours, heating timer, none at the office."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from config.equipment import Geyser
from config.realistic import Presence, household_model
from simulator.profiles import geyser
from simulator.profiles.realistic import RealisticProfile, realistic_profile
from simulator.profiles.spec import MeterSpec

KOLKATA = ZoneInfo("Asia/Kolkata")
SEED = 11
KEYS = {"A": 0, "B": 1, "C": 2}
YEAR = [date(2024, 1, 3) + timedelta(days=23 * k) for k in range(16)]
WINTER = [date(2024, 1, 8) + timedelta(days=k) for k in range(7)]


def profile(hid: str, member: int | None = None) -> RealisticProfile:
    key = (KEYS[hid],) if member is None else (KEYS[hid], member)
    return realistic_profile(MeterSpec(hid, hid, key), KOLKATA, SEED)


def element_runs(geyser_kw: np.ndarray) -> list[tuple[int, int]]:
    on = np.concatenate(([False], geyser_kw > 0.5, [False]))
    edges = np.flatnonzero(np.diff(on.astype(np.int8)))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


@pytest.mark.parametrize("member", [None, 1, 2, 3])
def test_office_has_no_geyser(member: int | None) -> None:
    p = profile("B", member)
    assert p.model.geyser is None
    for day in YEAR[:6]:
        trace = p.day(day)
        assert not trace.geyser_kw.any()
        assert np.isfinite(trace.tank_c).all()
        assert np.ptp(trace.tank_c) == 0.0


@pytest.mark.parametrize(("hid", "member"), [("A", None), ("C", None), ("A", 2), ("C", 3)])
def test_tank_in_its_band_and_element_off_at_the_set_point(hid: str, member: int | None) -> None:
    p = profile(hid, member)
    g = p.model.geyser
    assert g is not None
    low = g.setpoint_c - g.band_k
    for day in YEAR:
        trace = p.day(day)
        assert trace.tank_c.max() <= g.setpoint_c + 0.01  # the thermostat acts on whole seconds: < 1 s overshoot
        assert np.mean(trace.tank_c >= low - 2.0) > 0.95  # draws pull it below only briefly
        assert trace.tank_c.min() > low - 15.0
        for a, b in element_runs(trace.geyser_kw):
            if b < trace.tank_c.size:
                assert trace.tank_c[b] == pytest.approx(g.setpoint_c, abs=0.01)  # heated up to the set-point
            if a > 0:
                assert trace.tank_c[a] <= low + 0.01  # switched on only below the band


def test_element_comes_on_after_the_morning_showers() -> None:
    p = profile("A")
    g = p.model.geyser
    assert g is not None
    one_band_kwh = g.volume_l * geyser.WATER_J_PER_KG_K * g.band_k / 3.6e6
    for day in WINTER:
        trace = p.day(day)
        starts = [a for a, _ in element_runs(trace.geyser_kw)]
        assert any(6 * 3600 <= a < 9 * 3600 for a in starts)  # hot-water hours 6-8, then the reheat
        if day.weekday() < 5:  # nobody home 8:30-18: at most one reheat of standing losses
            assert sum(11 * 3600 <= a < 17 * 3600 for a in starts) <= 1
            assert trace.geyser_kw[11 * 3600 : 17 * 3600].sum() / 3600 < 1.1 * one_band_kwh


def test_winter_needs_more_hot_water_energy_than_summer() -> None:
    p = profile("A")
    winter = np.mean([p.day(d).geyser_kw.sum() / 3600 for d in WINTER])
    summer = np.mean(
        [p.day(d).geyser_kw.sum() / 3600 for d in (date(2024, 6, 10) + timedelta(days=k) for k in range(7))]
    )
    assert winter > 1.5 * summer > 0.5


def test_big_draw_switches_the_element_and_energy_balances() -> None:
    g = Geyser()
    n = 20_000
    inlet, ambient = 20.0, 25.0
    draws = geyser.Draws(
        np.array([1000, 1600], dtype=np.int64),
        np.array([480, 300], dtype=np.int64),
        np.array([0.13, 0.06]),
        np.array([40.0, 45.0]),
    )
    inputs = geyser.tank_inputs(g, draws, None, ambient, inlet, n)
    day = geyser.geyser_day(g, inputs, geyser.nominal_state(g, -3600))
    tank = day.tank.expand(0, n, n)
    power = day.power.expand(0, n, n)
    on = np.flatnonzero(power > 0)
    assert on.size > 0
    assert 1000 < on[0] < 1600 + 300  # the shower pulls the tank below its band; the element follows
    assert tank[on[0]] <= g.setpoint_c - g.band_k + 1e-6
    assert tank[on[-1] + 1] == pytest.approx(g.setpoint_c, abs=0.01)
    # Energy balance over the day (J): element = stored + standing loss + hot water drawn.
    seg = np.searchsorted(inputs.starts, np.arange(n), side="right") - 1
    g_w_per_k = (g.volume_l * geyser.WATER_J_PER_KG_K / inputs.tau_s[seg]) - g.ua_w_per_k
    mid = 0.5 * (tank + np.append(tank[1:], day.final.temp_c))
    drawn = np.sum(g_w_per_k * (mid - inlet))
    lost = np.sum(g.ua_w_per_k * (mid - ambient))
    stored = g.volume_l * geyser.WATER_J_PER_KG_K * (day.final.temp_c - tank[0])
    element = power.sum() * 1000.0
    assert element == pytest.approx(stored + lost + drawn, rel=2e-3)
    # The hot share of each draw (mixing to 40 and 45 C from a 60 C tank), at the tank's temperature meanwhile.
    hot_kg = 480 * 0.13 * (40 - inlet) / (g.setpoint_c - inlet) + 300 * 0.06 * (45 - inlet) / (g.setpoint_c - inlet)
    assert drawn == pytest.approx(hot_kg * geyser.WATER_J_PER_KG_K * (np.mean(tank[1000:1900]) - inlet), rel=0.02)


def test_draws_in_the_geyser_hours() -> None:
    p = profile("C")
    water = p.model.hot_water
    rng = np.random.default_rng(5)
    total_showers = 0
    for day in YEAR:
        schedule = p.schedule(day)
        draws = geyser.day_draws(water, schedule, rng)
        windows = schedule.hot_water
        awake = schedule.intervals(Presence.AWAKE)
        big = draws.use_c != water.small_c  # showers and dishes
        for start, is_big in zip(draws.start_s.tolist(), big.tolist(), strict=True):
            inside = windows if is_big else awake
            assert any(a <= start < b for a, b in inside)
        showers = int(np.sum(draws.use_c == water.shower_c))
        assert showers <= schedule.people
        total_showers += showers
    assert total_showers >= len(YEAR)  # about 0.9 a person a day


def test_heating_timer_keeps_the_element_inside_its_hours() -> None:
    base = household_model("A")
    assert base.geyser is not None
    model = replace(base, geyser=replace(base.geyser, timer_hours=((4, 6), (16, 18))))
    p = RealisticProfile(model, KOLKATA, SEED, (0,))
    seconds = 0
    for day in WINTER:
        on = np.flatnonzero(p.day(day).geyser_kw > 0)
        hours = on // 3600
        assert np.isin(hours, [4, 5, 16, 17]).all()
        seconds += on.size
    assert seconds > 3600  # it still heats, inside the timer
