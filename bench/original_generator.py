"""A faithful re-implementation of the original generator (``gen_fake_data.py``, seed-behaviour.md section 1), as a
script of its own, so it can be timed as a whole process like ``python -m simulator generate``:

    python bench/original_generator.py --out DIR [--days 3] [--every 25]

A pure-Python loop over the seconds with the hour-of-day schedules, Overall = 0.5 + AC + Geyser + U(0.1, 1.0) from
Python's ``random``; with errors, every N-th second every column gets one error of a random type (negative, spike,
missing); a pandas DataFrame built from the rows and written with its index; the two files drawn independently.
``bench.generate`` times the same functions in process. Imports nothing of the project.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import numpy as np
import pandas as pd

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
    out.mkdir(parents=True, exist_ok=True)
    original_generate(days, False, every).to_csv(out / WITHOUT)
    original_generate(days, True, every).to_csv(out / WITH)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path, help="directory to write the two CSV files to")
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--every", type=int, default=25, help="an error every N seconds")
    args = parser.parse_args()
    run_original(args.out, args.days, args.every)


if __name__ == "__main__":
    main()
