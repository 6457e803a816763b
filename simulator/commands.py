"""The simulator's commands: ``run`` (the live meters' shell: outbox, loop, signals), ``generate`` (the batch
generator's files) and ``plot`` (one day's figure), each from parsed arguments and settings."""

from __future__ import annotations

import argparse
import gc
import logging
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from config.errors import ConfigError
from config.run.extras import PLOT, require
from config.settings import Settings
from simulator.cli import (
    connect_rate_of,
    days_of,
    faults_of,
    fleet_size_of,
    keepalive_of,
    parse_date_arg,
    run_specs,
    start_date_of,
)
from simulator.dataset.plan import DatasetPlan
from simulator.localday import day_span
from simulator.meters.fleet import build_meters, fleet_specs
from simulator.profiles.factory import make_profile

if TYPE_CHECKING:
    from types import FrameType

# The live meters' shell (publisher, MQTT, outbox, secret: ~50 ms of imports) is imported by `run` only, in `run`
# (and its options, in simulator.cli), so a short `generate` or `plot` does not pay for it.

log = logging.getLogger("simulator")


FD_MARGIN = 64  # descriptors beyond one socket per meter: the outbox, logs, the selector


def run(args: argparse.Namespace, settings: Settings) -> int:
    """``run``: the live meters, publishing until SIGINT or SIGTERM; returns the exit code."""
    import signal  # the live meters' shell: see the note at the top
    import time

    from config.secret import client_broker
    from config.wire import format_ts
    from simulator.live.checkpoint import HORIZON_LEAD_S, Checkpoint
    from simulator.live.clock import SimClock, start_epoch
    from simulator.live.outbox import Outbox
    from simulator.live.publisher import FleetLoop
    from simulator.live.reproduce import Model, resume
    from simulator.live.sockets import SHOW_METERS
    from simulator.live.start import outbox_retention, plan_start, warmup_seconds

    speed, start_s, seed = settings.speed, settings.start_s, seed_of(settings)
    profile, climate = settings.profile, settings.climate
    fleet_size = fleet_size_of(args)
    keepalive_s, connect_rate = keepalive_of(args), connect_rate_of(args)
    specs = run_specs(args)
    _check_fd_limit(len(specs), "--fleet" if fleet_size is not None else "--household")
    ids = [spec.meter_id for spec in specs]
    zone = settings.zone()
    sim_start = start_epoch(time.time(), zone, start_s)
    broker = client_broker(settings)  # each meter logs in as itself (unless the URL has a user)
    fleet = fleet_size is not None
    retention_s = outbox_retention(args.outbox_retention, fleet)
    warmup_s = warmup_seconds(args.warmup, settings, fleet, retention_s)
    outbox = Outbox(Path(settings.data_dir), retention_s)
    # A restarted meter continues after everything its last run may have published (its newest checkpoint stepped
    # up to that run's horizon): the same seqs and registers, never back in time (simulator.live.start).
    resumed = resume(outbox, ids)
    lasts = {meter_id: r.state for meter_id, r in resumed.items()}
    plan = plan_start(sim_start, speed, ids, lasts, warmup_s)
    sim_start = plan.sim_start
    if plan.resuming:
        log.info("resuming after the last reading on record (%s)", format_ts(plan.resume_at - 1))
    for meter_id, state in sorted(lasts.items())[:SHOW_METERS]:
        log.info("meter %s continues at seq %d (registers %.4f kWh overall)", meter_id, state.seq, state.overall_kwh)
    if len(lasts) > SHOW_METERS:
        log.info("... and %d more meters continue where they were", len(lasts) - SHOW_METERS)
    faults = faults_of(args)
    meters = build_meters(specs, seed, zone, sim_start, profile, climate, faults, lasts)
    if plan.warmup_s:  # new meters begin in the past; the loop catches up, oldest first, then runs live
        fresh = [spec for spec in specs if spec.meter_id not in lasts]
        meters = build_meters(fresh, seed, zone, plan.warmup_start, profile, climate, faults) + [
            meter for meter in meters if meter.meter_id in lasts
        ]
        log.info(
            "warm-up: %s publish the past %d s first (in %g s: a bridge started with them subscribes meanwhile)",
            ",".join(plan.fresh),
            plan.warmup_s,
            plan.hold_s,
        )
    # The run's settings and every meter's starting point are on disk before anything is published.
    model = Model(seed, profile, climate, zone.key, faults)
    starts = [
        Checkpoint.of(m.state, resumed[m.meter_id].acked_upto if m.meter_id in resumed else None, 0) for m in meters
    ]
    clock = SimClock(wall_origin=time.monotonic(), sim_origin=sim_start, speed=speed)
    outbox.begin_run(model.to_json(), math.ceil(sim_start + HORIZON_LEAD_S * speed), starts)
    # In fleet mode each meter publishes at its own offset into the second, not all at once.
    loop = FleetLoop(
        meters,
        broker,
        clock,
        outbox=outbox,
        keepalive_s=keepalive_s,
        jitter=fleet_size is not None,
        connect_rate=connect_rate,
        hold_s=plan.hold_s,
    )

    def _stop(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        loop.stop()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    log.info(
        "meters %s: profile %s (%s), seed %d, speed %g, tz %s, errors %s, broker %s",
        ",".join(ids) if len(ids) <= SHOW_METERS else f"{','.join(ids[:SHOW_METERS])},... ({len(ids)} meters)",
        profile,
        climate,
        seed,
        speed,
        zone.key,
        "none" if faults is None else faults,
        broker.urls(),
    )
    # Meters, connections and profiles live as long as the process: frozen, the collector's full passes no longer walk
    # them (at 10,000 meters each took 40-60 ms, every 150 ms while the meters were connecting).
    gc.freeze()
    try:
        loop.run()
    finally:
        outbox.close()
    return 0


def seed_of(settings: Settings) -> int:
    """The fleet seed: the settings', else fresh entropy (logged by the caller)."""
    if settings.seed is not None:
        return settings.seed
    return int(np.random.SeedSequence().entropy) % 2**63  # type: ignore[arg-type]


def _check_fd_limit(meters: int, key: str) -> None:
    """Raise the open-file limit to the hard limit, then refuse (before any meter connects) a fleet that cannot fit."""
    from config.run.fdlimit import check_fits, raise_soft_limit  # run only

    limit = raise_soft_limit(log)
    what = f"one socket per meter for {meters} meters plus {FD_MARGIN} for the outbox database, logs and the selector"
    check_fits(meters + FD_MARGIN, limit.soft, key, what)


# glibc's mallopt parameters (malloc.h): M_TRIM_THRESHOLD, M_MMAP_THRESHOLD.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def keep_freed_memory() -> None:
    """Let this (batch) process reuse the memory it frees instead of handing it back to the system.

    The generator's arrays are 0.1-10 MB each and short-lived. By default glibc serves such sizes from fresh mappings
    or trims them off the heap when freed, so every array's pages are faulted in anew: about a quarter of the CSV
    text's time on the seed job. Here blocks up to 64 MiB come from the heap and freed memory stays in it (the peak
    is the same; it is returned at exit). Linux/glibc only; elsewhere nothing changes."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes  # already loaded by numpy

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # a libc without mallopt
        return
    mallopt(_M_MMAP_THRESHOLD, 64 << 20)
    mallopt(_M_TRIM_THRESHOLD, 512 << 20)


def generate(args: argparse.Namespace, settings: Settings) -> int:
    """``generate``: a dataset's files written to ``--out``; returns the exit code."""
    from simulator.dataset.writers import write_dataset  # pyarrow and tqdm: not loaded by the long-running `run`

    households = tuple(part.strip() for part in args.households.split(",") if part.strip())
    if not households:
        raise ConfigError("--households", "no households given")
    plan = DatasetPlan(
        days=days_of(args),
        households=households,
        fleet_size=fleet_size_of(args),
        profile=settings.profile,
        climate=settings.climate,
        tz=settings.tz,
        seed=seed_of(settings),
        start_date=start_date_of(args),
        faults=faults_of(args),
        layout=args.layout,
        fmt=args.format,
    )
    log.info(
        "generating %d day(s) from %s of %d meter(s): profile %s, seed %d, tz %s, layout %s, %s",
        plan.days,
        plan.start_date,
        len(plan.specs()),
        plan.profile,
        plan.seed,
        plan.tz,
        plan.layout,
        plan.fmt,
    )
    keep_freed_memory()
    try:
        files = write_dataset(plan, Path(args.out), progress=sys.stderr.isatty())
    except OSError as exc:
        raise ConfigError("--out", f"cannot write there: {exc}") from exc
    for path in files:
        log.info("wrote %s", path)
    return 0


def plot(args: argparse.Namespace, settings: Settings) -> int:
    """``plot``: one local day of one household drawn to ``--out``; returns the exit code."""
    require("matplotlib", PLOT, "python -m simulator plot")  # the plot extra
    from simulator.dataset.plot import day_figure, thermals_of  # matplotlib: not loaded by the long-running `run`

    day = parse_date_arg(args.date, "--date")
    spec = fleet_specs([args.household])[0]
    zone = settings.zone()
    name, seed = settings.profile, seed_of(settings)
    profile = make_profile(name, spec, zone, seed, settings.climate)
    start, end = day_span(day, zone)
    title = f"household {spec.meter_id}, {day} ({zone.key}), {name} profile, seed {seed}"
    figure = day_figure(profile.block(start, end - start), title, thermals_of(profile, day))
    try:
        figure.savefig(Path(args.out), dpi=100)
    except (OSError, ValueError) as exc:
        raise ConfigError("--out", f"cannot write {args.out!r}: {exc}") from exc
    log.info("wrote %s (seed %d)", args.out, seed)
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace, Settings], int]] = {
    "run": run,
    "generate": generate,
    "plot": plot,
}
