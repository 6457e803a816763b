"""How fast is the realistic profile? Day traces with every dense per-second array, on one core (this process).

Target: 1,000 meter-days at 1-s resolution in <= 10 s. The default run is 334 fleet members (round-robin over A, B, C)
times 3 consecutive local days = 1,002 meter-days, each a full ``DayTrace`` (6 arrays of 86,400 float64). A second
figure times the live path: one meter-day as 1,440 blocks of 60 s (``MeterProfile.block``, as ``Meter`` asks for them).

    python -m bench.realistic [--members 334] [--days 3] [--start 2024-06-01] [--tz Asia/Kolkata] [--seed 1]
"""

from __future__ import annotations

import argparse
import time
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from simulator.localday import local_day
from simulator.meters.fleet import fleet_specs
from simulator.profiles.realistic import realistic_profile

TARGET_S_PER_1000 = 10.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=334)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2024, 6, 1))
    parser.add_argument("--tz", type=ZoneInfo, default=ZoneInfo("Asia/Kolkata"))
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    specs = fleet_specs(["A", "B", "C"], args.members)
    days = [args.start + timedelta(days=k) for k in range(args.days)]

    began = time.perf_counter()
    seconds = 0
    checksum = 0.0
    for spec in specs:
        profile = realistic_profile(spec, args.tz, args.seed)
        for day in days:
            trace = profile.day(day)
            seconds += trace.overall_kw.size
            checksum += float(trace.overall_kw[-1] + trace.room_c[-1] + trace.tank_c[-1] + trace.outdoor_c[-1])
    elapsed = time.perf_counter() - began
    meter_days = len(specs) * len(days)
    per_1000 = elapsed / meter_days * 1000.0
    print(f"day traces: {meter_days} meter-days ({seconds:,} s of data) in {elapsed:.2f} s")
    print(f"  {meter_days / elapsed:.0f} meter-days/s, {elapsed / meter_days * 1000:.2f} ms per meter-day")
    print(f"  {per_1000:.2f} s per 1,000 meter-days = {per_1000 / TARGET_S_PER_1000:.2f} x the 10 s target")

    spec = specs[0]
    profile = realistic_profile(spec, args.tz, args.seed + 1)
    start = local_day(days[0], args.tz).start_s
    began = time.perf_counter()
    for k in range(1440):
        profile.block(start + 60 * k, 60)
    live = time.perf_counter() - began
    per_block_us = live / 1440 * 1e6
    print(f"live path: one meter-day as 1,440 blocks of 60 s in {live * 1000:.0f} ms ({per_block_us:.0f} us per block)")
    print(f"(checksum {checksum:.6f})")


if __name__ == "__main__":
    main()
