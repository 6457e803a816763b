"""A live meter and the batch generator give the same values for the same simulated second (same seed and config),
for both profiles, with and without injected errors, whatever second the meter started at."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from simulator.dataset.plan import DatasetPlan, chunks
from simulator.localday import day_span
from simulator.meters.faults import ALL_TYPES, ErrorType, FaultConfig
from simulator.meters.fleet import build_meters, fleet_specs

SEED = 31
TZ = "Asia/Kolkata"
DAY = date(2024, 5, 20)  # a hot day: the realistic AC cycles


def _live(profile: str, faults: FaultConfig | None, start_s: int, n: int, fleet: int | None) -> list[dict[int, tuple]]:
    """Per meter: ts -> (ac_w, geyser_w, overall_w) as the live meter reports them (None = no value)."""
    meters = build_meters(fleet_specs(["A", "B", "C"], fleet), SEED, ZoneInfo(TZ), start_s, profile, faults=faults)
    out = []
    for meter in meters:
        readings = meter.due(start_s + n, limit=n)
        out.append({r.ts: (r.ac_w, r.geyser_w, r.overall_w) for r in readings})
    return out


@pytest.mark.parametrize("profile", ["classic", "realistic"])
@pytest.mark.parametrize("faults", [None, FaultConfig(every_s=25, types=ALL_TYPES)], ids=["clean", "errors"])
@pytest.mark.parametrize("fleet", [None, 4], ids=["households", "fleet"])
def test_live_meter_reports_what_the_generator_writes(
    profile: str, faults: FaultConfig | None, fleet: int | None
) -> None:
    plan = DatasetPlan(
        days=1,
        households=("A", "B", "C"),
        fleet_size=fleet,
        profile=profile,
        tz=TZ,
        seed=SEED,
        start_date=DAY,
        faults=faults,
    )
    (chunk,) = list(chunks(plan))
    day_start, _ = day_span(DAY, ZoneInfo(TZ))
    start_s, n = day_start + 13 * 3600 + 17, 600  # a live meter started mid-afternoon, for 10 minutes
    live = _live(profile, faults, start_s, n, fleet)
    values = chunk.clean_kw if chunk.values_kw is None else chunk.values_kw
    offset = start_s - day_start
    compared = 0
    for m, readings in enumerate(live):
        for i in range(n):
            ts = start_s + i
            row = values[m, offset + i]
            dropped = chunk.codes is not None and bool(np.any(chunk.codes[m, offset + i] == ErrorType.DROPOUT))
            if dropped:
                assert ts not in readings  # a dropout publishes nothing
                continue
            expected = tuple(None if np.isnan(v) else float(v) * 1000.0 for v in row)
            assert readings[ts] == expected, (chunk.meter_ids[m], ts)
            compared += 1
    assert compared > 0.9 * n * len(live)
    if profile == "realistic" and faults is None:  # the live realistic AC is not flat: in the office it cycles
        office = live[chunk.meter_ids.index("B" if fleet is None else "B-0001")]
        assert len({office[start_s + i][0] for i in range(n)}) > 2


def test_energy_registers_follow_true_power_despite_errors() -> None:
    """Injected errors corrupt reported power only; the energy register integrates the true power."""
    start_s = day_span(DAY, ZoneInfo(TZ))[0] + 8 * 3600
    faults = FaultConfig(every_s=5, types=ALL_TYPES)
    clean = build_meters(fleet_specs(["A"]), SEED, ZoneInfo(TZ), start_s, "realistic")[0]
    faulty = build_meters(fleet_specs(["A"]), SEED, ZoneInfo(TZ), start_s, "realistic", faults=faults)[0]
    clean_last = clean.due(start_s + 900, limit=900)[-1]
    faulty.due(start_s + 900, limit=900)
    assert faulty.state.overall_kwh == pytest.approx(clean_last.overall_kwh, rel=1e-12)
    assert faulty.state.seq < clean.state.seq  # dropouts published nothing
