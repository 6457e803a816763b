"""How much faster is ``python -m simulator generate`` than the original generator, on the original job?

The job: 3 days x households A, B, C, an error every 25 s, the original CSV layout (both files). Timed two ways, each
run writing to its own temporary directory:

As whole processes (what a user waits for: interpreter start, imports, generation, files):
(a) ``python bench/original_generator.py --out DIR ...``: a faithful re-implementation of the original
    ``gen_fake_data.py`` (seed-behaviour.md section 1) as a script: a pure-Python loop over the seconds, a pandas
    DataFrame from the rows, ``to_csv``; the two files drawn independently.
(b) ``python -m simulator generate ... --profile classic --layout seed``, which also writes the ground truth file
    ``..._error_types.csv`` that the original did not have.

In this process (imports already paid): the same two, (a) ``original_generator.run_original`` and (b) ``main([...])``.

Best and median of ``--repeat`` runs of each, interleaved (a, b, a, b, ...) so that load on a shared machine falls on
both alike.

    python -m bench.generate [--days 3] [--every 25] [--repeat 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd

from bench.original_generator import WITH, run_original
from simulator.__main__ import main as simulator_main
from simulator.localday import day_span
from simulator.meters.fleet import fleet_specs
from simulator.profiles.factory import make_profile

ORIGINAL_SCRIPT = Path(__file__).with_name("original_generator.py")


def ours_argv(out: Path, days: int, every: int) -> list[str]:
    """The generator's arguments for the original job."""
    argv = ["generate", "--days", str(days), "--households", "A,B,C", "--errors-every", str(every), "--seed", "1"]
    return [*argv, "--format", "csv", "--layout", "seed", "--profile", "classic", "--tz", "UTC", "--out", str(out)]


def run_ours(out: Path, days: int, every: int) -> None:
    """Our generator through its command line, in process."""
    if simulator_main(ours_argv(out, days, every)) != 0:
        raise SystemExit("generate failed")


def original_process(out: Path, days: int, every: int) -> None:
    """The original as a script, in a process of its own."""
    argv = [sys.executable, str(ORIGINAL_SCRIPT), "--out", str(out), "--days", str(days), "--every", str(every)]
    subprocess.run(argv, check=True, timeout=600)


def ours_process(out: Path, days: int, every: int) -> None:
    """``python -m simulator generate`` in a process of its own (its log lines discarded)."""
    argv = [sys.executable, "-m", "simulator", *ours_argv(out, days, every)]
    subprocess.run(argv, check=True, timeout=600, stderr=subprocess.DEVNULL)


def profile_only(days: int) -> None:
    """Just the classic profile's per-second values of the same meter-days (no faults, no files)."""
    zone = ZoneInfo("UTC")
    for spec in fleet_specs(["A", "B", "C"]):
        profile = make_profile("classic", spec, zone, 1)
        for offset in range(days):
            start, end = day_span(date.fromordinal(date(2024, 1, 1).toordinal() + offset), zone)
            profile.block(start, end - start)


def timed(job: Callable[[Path], None]) -> float:
    """Seconds one run of ``job`` takes, in a fresh temporary directory."""
    with tempfile.TemporaryDirectory(prefix="bench-generate-") as tmp:
        started = time.perf_counter()
        job(Path(tmp))
        return time.perf_counter() - started


def pair(repeat: int, a: Callable[[Path], None], b: Callable[[Path], None]) -> tuple[list[float], list[float]]:
    """``repeat`` timings of each of ``a`` and ``b``, interleaved."""
    times_a, times_b = [], []
    for _ in range(repeat):
        times_a.append(timed(a))
        times_b.append(timed(b))
    return times_a, times_b


def _row(label: str, times: list[float]) -> str:
    return f"{label:<52} best {min(times):7.3f} s  median {statistics.median(times):7.3f} s"


def _ratio(label: str, a: list[float], b: list[float], target: float) -> str:
    best, median = min(a) / min(b), statistics.median(a) / statistics.median(b)
    return f"ratio (a)/(b) {label}: {best:.1f}x best, {median:.1f}x median (target >= {target:g}x)"


def _check(out: Path, days: int) -> str:
    """The with-errors file has the original's header and one row per second; the files' sizes."""
    header = (out / WITH).open().readline().rstrip("\n")
    frame = pd.read_csv(out / WITH, index_col=0)
    assert header == ",A_AC,A_Geyser,A_Overall,B_AC,B_Geyser,B_Overall,C_AC,C_Geyser,C_Overall", header
    assert len(frame) == days * 86_400, len(frame)
    sizes = ", ".join(f"{path.name} {path.stat().st_size / 1e6:.1f} MB" for path in sorted(out.glob("*.csv")))
    return f"{len(frame)} rows; {sizes}"


def bytecode_note() -> str:
    """Whether the simulator's and config's modules have up-to-date bytecode caches (``__pycache__``).

    Without them every process compiles ~6,000 lines of source before it starts (tens of ms): the case when
    ``PYTHONDONTWRITEBYTECODE`` is set and nothing compiled them (pip compiles an installed package's modules; an
    editable install's are compiled by ``make .venv/.installed-run`` or ``python -m compileall config simulator``)."""
    root = Path(__file__).resolve().parent.parent
    sources = [path for package in ("config", "simulator") for path in (root / package).rglob("*.py")]
    stale = 0
    for source in sources:
        cached = Path(importlib.util.cache_from_source(str(source)))
        stale += not cached.exists() or cached.stat().st_mtime < source.stat().st_mtime
    state = "all cached" if not stale else f"{stale} of {len(sources)} modules without an up-to-date cache"
    flag = os.environ.get("PYTHONDONTWRITEBYTECODE", "")
    return f"bytecode of config/ and simulator/: {state}; PYTHONDONTWRITEBYTECODE={flag!r}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--every", type=int, default=25)
    parser.add_argument("--repeat", type=int, default=5, help="runs of each, for the best and the median")
    args = parser.parse_args()
    days, every = args.days, args.every
    with tempfile.TemporaryDirectory(prefix="bench-generate-") as tmp:
        ours_process(Path(tmp), days, every)
        print(f"ours: {_check(Path(tmp), days)}")
    print(f"job: {days} days x A,B,C, errors every {every} s, seed layout (csv); {args.repeat} runs of each")
    print(bytecode_note())
    proc_a, proc_b = pair(
        args.repeat, lambda out: original_process(out, days, every), lambda out: ours_process(out, days, every)
    )
    print("as processes:")
    print(_row("(a) python bench/original_generator.py", proc_a))
    print(_row("(b) python -m simulator generate", proc_b))
    print(_ratio("as processes", proc_a, proc_b, 20))
    run_ours(Path(tempfile.gettempdir()) / "bench-generate-warmup", days, every)  # imports and tables: paid once
    in_a, in_b = pair(args.repeat, lambda out: run_original(out, days, every), lambda out: run_ours(out, days, every))
    profile_s = timed(lambda out: profile_only(days))
    print("in this process:")
    print(_row("(a) original per-second loop + pandas to_csv", in_a))
    print(_row("(b) simulator main(['generate', ...])", in_b) + f"  (classic profile alone: {profile_s:.3f} s)")
    print(_ratio("in process", in_a, in_b, 50))


if __name__ == "__main__":
    main()
