"""How much faster is ``python -m simulator generate`` than the original generator, on the original job?

The job: 3 days x households A, B, C, an error every 25 s, the original CSV layout (both files). Timed two ways in the
same run, each writing to its own temporary directory:

(a) a faithful re-implementation of the original ``gen_fake_data.py`` (seed-behaviour.md section 1): a pure-Python loop
    over the seconds with the hour-of-day schedules, Overall = 0.5 + AC + Geyser + U(0.1, 1.0) from Python's
    ``random``; with errors, every N-th second every column gets one error of a random type (negative, spike, missing);
    a pandas DataFrame built from the rows and written with its index; the two files drawn independently.
(b) our generator, in process: ``main(["generate", ..., "--profile", "classic", "--layout", "seed"])``, which also
    writes the ground truth file ``..._error_types.csv`` that the original did not have.

    python -m bench.generate [--days 3] [--every 25] [--repeat 1]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from simulator.__main__ import main as simulator_main
from simulator.fleet import fleet_specs, make_profile
from simulator.localday import day_span

# The original's schedules: household -> (AC kW, AC hours, Geyser kW, Geyser hours), blocks [lo, hi).
ORIGINAL_HOUSEHOLDS = {
    "A": (1.5, ((0, 7), (18, 23)), 3.0, ((6, 8), (18, 20))),
    "B": (2.0, ((9, 17),), 0.0, ()),
    "C": (1.5, ((22, 24), (0, 6), (10, 14)), 3.0, ((5, 7), (21, 23))),
}
WITHOUT = "realistic_fake_energy_data_without_errors.csv"
WITH = "realistic_fake_energy_data_with_errors.csv"


def _noise(value: float) -> float:
    kind = random.choice(["negative", "spike", "missing"])
    if kind == "negative":
        return -abs(value)
    if kind == "spike":
        return value * random.uniform(10, 100)
    return np.nan


def original_generate(days: int, errors: bool, error_period: int) -> pd.DataFrame:
    """The original per-second loop: one dict per second, then a DataFrame."""
    rows = []
    for second in range(days * 24 * 3600):
        hour = (second // 3600) % 24
        row = {}
        for house, (ac_kw, ac_hours, geyser_kw, geyser_hours) in ORIGINAL_HOUSEHOLDS.items():
            ac = ac_kw if any(lo <= hour < hi for lo, hi in ac_hours) else 0.0
            geyser = geyser_kw if any(lo <= hour < hi for lo, hi in geyser_hours) else 0.0
            overall = 0.5 + ac + geyser + random.uniform(0.1, 1.0)
            row[f"{house}_AC"] = ac
            row[f"{house}_Geyser"] = geyser
            row[f"{house}_Overall"] = overall
        if errors and second % error_period == 0:
            row = {column: _noise(value) for column, value in row.items()}
        rows.append(row)
    return pd.DataFrame(rows)


def run_original(out: Path, days: int, every: int) -> None:
    """Both files of the original, each from its own loop (independent draws)."""
    original_generate(days, False, every).to_csv(out / WITHOUT)
    original_generate(days, True, every).to_csv(out / WITH)


def run_ours(out: Path, days: int, every: int) -> None:
    """Our generator through its command line, in process."""
    argv = ["generate", "--days", str(days), "--households", "A,B,C", "--errors-every", str(every), "--seed", "1"]
    argv += ["--format", "csv", "--layout", "seed", "--profile", "classic", "--tz", "UTC", "--out", str(out)]
    if simulator_main(argv) != 0:
        raise SystemExit("generate failed")


def profile_only(days: int) -> None:
    """Just the classic profile's per-second values of the same meter-days (no faults, no files)."""
    zone = ZoneInfo("UTC")
    for spec in fleet_specs(["A", "B", "C"]):
        profile = make_profile("classic", spec, zone, 1)
        for offset in range(days):
            start, end = day_span(date.fromordinal(date(2024, 1, 1).toordinal() + offset), zone)
            profile.block(start, end - start)


def best_of(repeat: int, job: Callable[[Path], None]) -> float:
    """The fastest of ``repeat`` runs, each in a fresh temporary directory, in seconds."""
    times = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="bench-generate-") as tmp:
            started = time.perf_counter()
            job(Path(tmp))
            times.append(time.perf_counter() - started)
    return min(times)


def _check(out: Path, days: int) -> str:
    header = (out / WITH).open().readline().rstrip("\n")
    frame = pd.read_csv(out / WITH, index_col=0)
    assert header == ",A_AC,A_Geyser,A_Overall,B_AC,B_Geyser,B_Overall,C_AC,C_Geyser,C_Overall", header
    assert len(frame) == days * 86_400, len(frame)
    sizes = ", ".join(f"{path.name} {path.stat().st_size / 1e6:.1f} MB" for path in sorted(out.glob("*.csv")))
    return f"{len(frame)} rows; {sizes}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--every", type=int, default=25)
    parser.add_argument("--repeat", type=int, default=1, help="report the best of this many runs of each")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-generate-") as tmp:
        run_ours(Path(tmp), args.days, args.every)
        print(f"ours: {_check(Path(tmp), args.days)}")
    original_s = best_of(args.repeat, lambda out: run_original(out, args.days, args.every))
    ours_s = best_of(args.repeat, lambda out: run_ours(out, args.days, args.every))
    started = time.perf_counter()
    profile_only(args.days)
    profile_s = time.perf_counter() - started
    job = f"{args.days} days x A,B,C, errors every {args.every} s, seed layout (csv)"
    print(f"job: {job}")
    print(f"(a) original per-second loop + pandas to_csv: {original_s:7.2f} s")
    print(f"(b) python -m simulator generate:             {ours_s:7.2f} s  (classic profile alone: {profile_s:.2f} s)")
    print(f"ratio (a)/(b): {original_s / ours_s:.1f}x (target >= 20x)")


if __name__ == "__main__":
    main()
