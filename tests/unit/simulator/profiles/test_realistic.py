"""simulator.profiles.realistic: channel invariants, noise, daily kWh in the documented ranges, the office's weekend,
the shift rotation, determinism, windows of any start and length, order independence, fleet diversity, use by a
Meter."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from config.equipment import Noise
from config.realistic import daily_kwh_range, household_model
from simulator.localday import local_day
from simulator.meters.fleet import Meter, fleet_specs
from simulator.meters.meter import MeterState
from simulator.profiles.realistic import RealisticProfile, realistic_profile
from simulator.profiles.spec import MeterSpec

KOLKATA = ZoneInfo("Asia/Kolkata")
BERLIN = ZoneInfo("Europe/Berlin")
SEED = 2024
KEYS = {"A": 0, "B": 1, "C": 2}
# Every season, weekdays and weekends.
SEASONS = [date(2024, m, d) for m in (1, 3, 5, 6, 8, 10, 12) for d in (9, 13)]


def profile(hid: str, member: int | None = None, seed: int = SEED, tz: ZoneInfo = KOLKATA) -> RealisticProfile:
    key = (KEYS[hid],) if member is None else (KEYS[hid], member)
    return realistic_profile(MeterSpec(hid, hid, key), tz, seed)


def clean(hid: str, tz: ZoneInfo = KOLKATA) -> RealisticProfile:
    return RealisticProfile(replace(household_model(hid), noise=Noise(0.0)), tz, SEED, (KEYS[hid],))


@pytest.mark.parametrize("hid", "ABC")
def test_overall_covers_ac_and_geyser_every_second(hid: str) -> None:
    for p in (clean(hid), profile(hid), profile(hid, 9)):
        for day in SEASONS[::3]:
            t = p.day(day)
            for arr in (t.ac_kw, t.geyser_kw, t.overall_kw, t.room_c, t.tank_c, t.outdoor_c):
                assert arr.dtype == np.float64
                assert arr.size == 86_400
                assert np.isfinite(arr).all()
            assert t.ac_kw.min() >= 0
            assert t.geyser_kw.min() >= 0
            assert np.all(t.overall_kw >= t.ac_kw + t.geyser_kw)
            assert (t.overall_kw - t.ac_kw - t.geyser_kw).min() >= 0.9 * p.model.appliances.standby_kw


def test_dst_days_have_23_and_25_hours() -> None:
    p = profile("A", tz=BERLIN)
    spring, autumn = p.day(date(2024, 3, 31)), p.day(date(2024, 10, 27))
    assert spring.ac_kw.size == 23 * 3600
    assert autumn.overall_kw.size == 25 * 3600
    assert spring.start_s == local_day(date(2024, 3, 31), BERLIN).start_s
    assert np.all(autumn.overall_kw >= autumn.ac_kw + autumn.geyser_kw)


def test_measurement_noise_is_small_and_keeps_zero() -> None:
    day = date(2024, 6, 4)
    noisy, exact = profile("A").day(day), clean("A").day(day)
    r = household_model("A").noise.relative
    for a, b in ((noisy.ac_kw, exact.ac_kw), (noisy.geyser_kw, exact.geyser_kw), (noisy.overall_kw, exact.overall_kw)):
        assert np.array_equal(a == 0, b == 0)
        ratio = a[b > 0] / b[b > 0]
        assert ratio.min() >= 1 - r - 1e-12
        assert ratio.max() <= 1 + r + 1e-12
    ratio = noisy.ac_kw[exact.ac_kw > 0] / exact.ac_kw[exact.ac_kw > 0]
    assert ratio.std() == pytest.approx(r / np.sqrt(3), rel=0.1)  # uniform in +-r, independent seconds
    assert np.array_equal(noisy.room_c, exact.room_c)  # the physics is the same


@pytest.mark.parametrize("hid", "ABC")
@pytest.mark.parametrize("member", [None, 2, 5])
def test_daily_kwh_in_documented_ranges(hid: str, member: int | None) -> None:
    p = profile(hid, member)
    for day in SEASONS:
        kwh = p.day(day).overall_kw.sum() / 3600
        band = daily_kwh_range(hid, day.weekday() < 5)
        assert band.low_kwh <= kwh <= band.high_kwh, (day, kwh)


def test_office_weekend_is_base_load() -> None:
    p = profile("B")
    app = p.model.appliances
    for saturday in (date(2024, 1, 13), date(2024, 6, 8), date(2024, 8, 17)):
        weekend = [p.day(saturday), p.day(saturday + timedelta(days=1))]
        monday = p.day(saturday + timedelta(days=2))
        for trace in weekend:
            assert not trace.ac_kw.any()
            assert not trace.geyser_kw.any()
            assert trace.overall_kw.mean() < app.standby_kw + app.fridge_kw
            assert trace.overall_kw.max() < app.standby_kw + app.fridge_kw * app.fridge_surge_factor * 1.02
        office_hours = monday.overall_kw[10 * 3600 : 16 * 3600].mean()
        assert office_hours > 3 * weekend[0].overall_kw.mean()


def test_shift_rotation_moves_the_day() -> None:
    base = household_model("C")
    rotating = replace(base, schedule=replace(base.schedule, rotation_h=(0.0, 8.0), rotation_period_days=7))
    p = RealisticProfile(rotating, KOLKATA, SEED, (2,))
    classic = profile("C")
    june = [date(2024, 6, 1) + timedelta(days=k) for k in range(28)]
    for day in june:
        shifted = (day.toordinal() // 7) % 2 == 1
        ac = p.day(day).ac_kw
        ac_classic = classic.day(day).ac_kw
        hours = ac.reshape(24, 3600).sum(axis=1) / 3600
        if shifted:  # windows 22-06 and 10-14 become 06-14 and 18-22
            assert hours[1:5].sum() == 0.0
            assert hours[8:13].sum() > 0.5
            assert hours[19:21].sum() > 0.2
            assert not np.array_equal(ac, ac_classic)
        else:
            assert hours[15:21].sum() == 0.0
            assert hours[1:5].sum() > 0.1
            if ((day.toordinal() - 1) // 7) % 2 == 0:  # after a classic day too: the same draws, the same night
                assert np.array_equal(ac, ac_classic)


def test_deterministic_by_seed() -> None:
    day = date(2024, 6, 4)
    a, b = profile("A").day(day), profile("A").day(day)
    for name in ("ac_kw", "geyser_kw", "overall_kw", "room_c", "tank_c", "outdoor_c"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    other = profile("A", seed=SEED + 1).day(day)
    assert not np.array_equal(a.overall_kw, other.overall_kw)
    assert not np.array_equal(a.outdoor_c, other.outdoor_c)  # the fleet's weather follows the seed too


@pytest.mark.parametrize("tz", [KOLKATA, BERLIN])
def test_blocks_equal_slices_of_days(tz: ZoneInfo) -> None:
    days = [date(2024, 3, 30), date(2024, 3, 31), date(2024, 4, 1)]  # Berlin springs forward on the 31st
    traces = [profile("C", 4, tz=tz).day(d) for d in days]
    whole = {name: np.concatenate([getattr(t, name) for t in traces]) for name in ("ac_kw", "geyser_kw", "overall_kw")}
    first = traces[0].start_s
    p = profile("C", 4, tz=tz)  # a fresh one: nothing cached
    midnight = traces[1].start_s - first
    cases = [(midnight - 90, 200), (midnight, 1), (midnight - 1, 1), (12_345, 1), (0, whole["ac_kw"].size)]
    cases += [(midnight, traces[1].ac_kw.size), (midnight + 3600 * 5 + 17, 60), (40_000, 100_000)]
    for offset, n in cases:
        block = p.block(first + offset, n)
        assert block.start_s == first + offset
        for name in ("ac_kw", "geyser_kw", "overall_kw"):
            assert np.array_equal(getattr(block, name), whole[name][offset : offset + n]), (offset, n, name)
    empty = p.block(first + 5, 0)
    assert empty.ac_kw.size == empty.geyser_kw.size == empty.overall_kw.size == 0


def test_a_day_alone_equals_the_day_among_others() -> None:
    target = date(2024, 7, 10)
    alone = profile("A", 3).day(target)
    p = profile("A", 3)
    for k in range(-4, 3):
        p.day(target + timedelta(days=k))  # forwards, then the target again from a warm cache
    backwards = profile("A", 3)
    for k in range(3, -4, -1):
        backwards.day(target + timedelta(days=k))
    for other in (p.day(target), backwards.day(target)):
        for name in ("ac_kw", "geyser_kw", "overall_kw", "room_c", "tank_c", "outdoor_c"):
            assert np.array_equal(getattr(alone, name), getattr(other, name))


def test_fleet_members_differ_and_stay_plausible() -> None:
    nominal = profile("A")
    members = [profile("A", m) for m in range(1, 7)]
    assert nominal.model == household_model("A")  # classic households keep the template
    assert len({m.model for m in members}) == len(members)
    assert all(m.model != nominal.model for m in members)
    setpoints = [m.model.aircon.setpoint_c for m in members]
    assert len(set(setpoints)) == len(setpoints)
    assert all(22.5 <= s <= 27.5 for s in setpoints)
    day = date(2024, 6, 4)
    overall = [m.day(day).overall_kw for m in members]
    for i in range(len(overall)):
        for j in range(i + 1, len(overall)):
            assert not np.array_equal(overall[i], overall[j])
    for m in members:
        kwh = m.day(day).overall_kw.sum() / 3600
        assert daily_kwh_range("A", True).low_kwh <= kwh <= daily_kwh_range("A", True).high_kwh
    assert profile("A", 1).model == members[0].model  # drawn from the seed and the key, nothing else


def test_a_meter_reads_the_realistic_profile() -> None:
    spec = fleet_specs(["A", "B", "C"], 6)[4]  # B-0002
    p = realistic_profile(spec, KOLKATA, SEED)
    start = local_day(date(2024, 6, 4), KOLKATA).start_s - 30  # over midnight
    meter = Meter(spec, p, MeterState(meter_id=spec.meter_id, seq=0, next_ts=start))
    readings = meter.due(start + 90, limit=1000)
    block = realistic_profile(spec, KOLKATA, SEED).block(start, 90)
    assert [r.ts for r in readings] == list(range(start, start + 90))
    assert [r.overall_w for r in readings] == pytest.approx((block.overall_kw * 1000).tolist())
