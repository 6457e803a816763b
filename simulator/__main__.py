"""Command line of the simulator.

    python -m simulator run --household A [--household B ...] [--speed N] [--start HH:MM:SS] [--seed S]
    python -m simulator run --fleet 10000 [--households A,B,C] [--fleet-offset K] [--connect-rate 1000]
    python -m simulator generate --days 3 --households A,B,C --errors-every 25 --seed 1 --format csv --out DIR
    python -m simulator plot --household A --date 2024-01-01 --out day.png

Bad arguments or settings: one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import logging
import math
import os
import sys
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if __name__ == "__main__":
    # numpy's OpenBLAS starts a thread per core at import that busy-waits for work for ~0.1 s (0.06 s of CPU on
    # `import numpy` alone, 2 cores); nothing here multiplies matrices, so a program run of the simulator starts none.
    # An importer (tests, benchmarks) is left as it is; a value set by the user is kept.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    # The imports below (numpy's included) make some 100,000 long-lived objects and next to no garbage: the
    # collector is off until they are done, and then leaves them out of its passes (`gc.freeze` below).
    gc.disable()

import numpy as np

from config.errors import ConfigError
from config.extras import PLOT, require
from config.households import CLASSIC_ORDER
from config.logs import configure_logging
from config.settings import (
    CLIMATE_NAMES,
    SIMULATOR,
    Settings,
    load_settings,
    parse_broker_urls,
    parse_climate,
    parse_float_in,
    parse_int_in,
    parse_speed,
    parse_time_of_day,
    parse_tz,
    settings_help,
)
from simulator.dataset.plan import DEFAULT_START_DATE, FORMATS, LAYOUTS, MAX_DAYS, DatasetPlan
from simulator.localday import day_span
from simulator.meters.faults import ORIGINAL_TYPES, FaultConfig, parse_error_types
from simulator.meters.fleet import MAX_FLEET, build_meters, fleet_specs, run_templates
from simulator.profiles.factory import PROFILES, make_profile
from simulator.profiles.spec import MeterSpec

if TYPE_CHECKING:
    from types import FrameType

# The live meters' shell (publisher, MQTT, outbox, secret: ~50 ms of imports) is imported by `run` only, in `_run` and
# `_run_options`, so a short `generate` or `plot` does not pay for it.

log = logging.getLogger("simulator")

FD_MARGIN = 64  # descriptors beyond one socket per meter: the outbox, logs, the selector


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are ``ConfigError`` (one line, exit code 2 from ``main``), not SystemExit."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError("arguments", f"{message} (see {self.prog} --help)")


_HELP = {
    "run": "run live meters that publish to an MQTT broker",
    "generate": "write a dataset of per-second readings (csv or parquet), with errors",
    "plot": "draw one local day of one household to an image (png)",
}


def _command(argv: Sequence[str]) -> str | None:
    """The command named in ``argv`` (its first word that is one), if any."""
    return next((word for word in argv if word in _HELP), None)


def _parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line; only ``command``'s options are added (all commands' if None): their help needs the modules
    of that command."""
    parser = _Parser(
        prog="python -m simulator",
        description=__doc__,
        epilog=settings_help(SIMULATOR),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    options = {"run": _run_options, "generate": _generate_options, "plot": _plot_options}
    for name, add in options.items():
        subparser = sub.add_parser(name, help=_HELP[name])
        if command is None or command == name:
            add(subparser)
    return parser


def _run_options(run: argparse.ArgumentParser) -> None:
    from simulator.live.checkpoint import DEFAULT_RETENTION_S, FLEET_MODE_RETENTION_S  # run only
    from simulator.live.publisher import KEEPALIVE_S
    from simulator.live.schedule import DEFAULT_CONNECT_RATE

    run.add_argument(
        "--household",
        action="append",
        metavar="ID",
        help=f"household to run (repeatable): {', '.join(CLASSIC_ORDER)}",
    )
    run.add_argument("--households", metavar="LIST", help="or: comma-separated households, e.g. A,B,C")
    run.add_argument(
        "--broker",
        help="mqtt[s]://[user:pass@]host:port, or a comma-separated list to fail over between (default FLEET_BROKER)",
    )
    run.add_argument("--speed", help="simulated seconds per wall second (default FLEET_SPEED or 1)")
    run.add_argument("--start", help="simulated time of day to start at, HH:MM:SS (default: now)")
    run.add_argument(
        "--warmup",
        metavar="DURATION",
        help="on a meter's first start (no outbox state for it), first publish this much past data, e.g. 24h, 90m, "
        "0 (off); at most 7d and at most --outbox-retention; so statistics, replay and the dashboard's last hour work "
        "from the first minute (default FLEET_WARMUP or 24h; with --fleet 0)",
    )
    run.add_argument(
        "--fleet",
        metavar="N",
        help=f"run N meters (1-{MAX_FLEET}) spread over the households (default A,B,C): A-0001, B-0001, ... "
        "instead of the households",
    )
    run.add_argument(
        "--fleet-offset",
        metavar="K",
        help="with --fleet: skip the first K members of the fleet's order, so several hosts share one fleet "
        "(--fleet 5000 here and --fleet 5000 --fleet-offset 5000 there are the meters of --fleet 10000)",
    )
    run.add_argument(
        "--outbox-retention",
        metavar="DURATION",
        help="how far back each meter's readings can be reproduced from its outbox for replays and backlogs (e.g. "
        f"90m, 24h, 7d; default {DEFAULT_RETENTION_S // 86_400}d, with --fleet {FLEET_MODE_RETENTION_S // 3600}h: "
        "a checkpoint every 10 s, about 0.7 MB per meter-day)",
    )
    run.add_argument(
        "--keepalive",
        metavar="SECONDS",
        help=f"MQTT keepalive: the broker declares a silent meter offline after 1.5x this (default {KEEPALIVE_S})",
    )
    run.add_argument(
        "--connect-rate",
        metavar="PER_S",
        help=f"at most this many new MQTT connections per second, all meters (default {DEFAULT_CONNECT_RATE:g})",
    )
    _fault_options(run, "live readings carry them, without saying so, as real meters do")
    _common(run)


def _generate_options(gen: argparse.ArgumentParser) -> None:
    gen.add_argument("--out", required=True, metavar="DIR", help="directory to write to (created if missing)")
    gen.add_argument("--days", default="1", help=f"number of local days, 1-{MAX_DAYS} (default 1)")
    gen.add_argument("--households", default=",".join(CLASSIC_ORDER), help="comma-separated households (default A,B,C)")
    gen.add_argument("--fleet", metavar="N", help="N meters spread over the households (A-0001, B-0001, ...)")
    gen.add_argument("--start-date", metavar="YYYY-MM-DD", help="first local day (default 2024-01-01)")
    _fault_options(gen, "the with-errors file carries the ground truth")
    gen.add_argument("--format", choices=FORMATS, default="csv", help="file format (default csv)")
    gen.add_argument("--layout", choices=LAYOUTS, default="tidy", help="tidy (default) or seed: the original's CSV")
    _common(gen)


def _plot_options(plot: argparse.ArgumentParser) -> None:
    plot.add_argument("--household", required=True, metavar="ID", help=f"household: {', '.join(CLASSIC_ORDER)}")
    plot.add_argument("--date", required=True, metavar="YYYY-MM-DD", help="the local day to draw")
    plot.add_argument("--out", required=True, metavar="FILE", help="image file to write, e.g. day.png")
    _common(plot)


def _fault_options(parser: argparse.ArgumentParser, what: str) -> None:
    group = parser.add_argument_group("injected errors", what)
    group.add_argument("--errors-every", metavar="N", help="every N seconds every channel gets an error (original: 25)")
    group.add_argument("--error-probability", metavar="P", help="or: each second and channel gets an error with P")
    group.add_argument(
        "--error-types",
        metavar="LIST",
        help="negative,spike,missing,stuck,dropout or all (default negative,spike,missing: the original's)",
    )


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", help=f"meter profile: {', '.join(sorted(PROFILES))} (default FLEET_PROFILE)")
    parser.add_argument(
        "--climate", help=f"climate of the realistic profile: {', '.join(CLIMATE_NAMES)} (FLEET_CLIMATE)"
    )
    parser.add_argument("--seed", help="fleet seed (default FLEET_SEED or fresh entropy, logged)")
    parser.add_argument("--tz", help="IANA time zone of the households (default FLEET_TZ)")


def _date(text: str, key: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError as exc:
        raise ConfigError(key, f"expected YYYY-MM-DD, got {text!r}") from exc


def with_options(settings: Settings, args: argparse.Namespace) -> Settings:
    """``settings`` with the command line's overrides of them (``FLEET_*`` < command line), each parsed and checked
    under its option's name; pure. ``--warmup`` is merged by ``simulator.live.start.warmup_seconds``, as its default
    depends on ``--fleet``."""
    changes: dict[str, Any] = {}
    if getattr(args, "broker", None) is not None:
        changes["broker"] = parse_broker_urls(args.broker, "--broker")
    if getattr(args, "speed", None):
        changes["speed"] = parse_speed(args.speed, "--speed")
    if getattr(args, "start", None):
        changes["start_s"] = parse_time_of_day(args.start, "--start")
    if args.profile is not None:
        changes["profile"] = _profile(args.profile)
    if args.climate is not None:
        changes["climate"] = parse_climate(args.climate, "--climate")
    if args.seed is not None:
        changes["seed"] = parse_int_in(args.seed, "--seed", 0, 2**63 - 1)
    if args.tz is not None:
        changes["tz"] = parse_tz(args.tz, "--tz")
    return dataclasses.replace(settings, **changes)


def _seed(settings: Settings) -> int:
    """The fleet seed: the settings', else fresh entropy (logged by the caller)."""
    if settings.seed is not None:
        return settings.seed
    return int(np.random.SeedSequence().entropy) % 2**63  # type: ignore[arg-type]


def _profile(text: str) -> str:
    name = text.strip().lower()
    if name not in PROFILES:
        raise ConfigError("--profile", f"unknown profile {name!r} (known: {', '.join(sorted(PROFILES))})")
    return name


def _faults(args: argparse.Namespace) -> FaultConfig | None:
    types = ORIGINAL_TYPES if args.error_types is None else parse_error_types(args.error_types)
    if args.errors_every is not None and args.error_probability is not None:
        raise ConfigError("--errors-every", "give --errors-every or --error-probability, not both")
    if args.errors_every is not None:
        return FaultConfig(every_s=parse_int_in(args.errors_every, "--errors-every", 1, 86_400), types=types)
    if args.error_probability is not None:
        return FaultConfig(
            probability=parse_float_in(args.error_probability, "--error-probability", 0.0, 1.0), types=types
        )
    if args.error_types is not None:
        raise ConfigError("--error-types", "needs --errors-every or --error-probability")
    return None


def _run(args: argparse.Namespace, settings: Settings) -> int:
    import signal  # the live meters' shell: see the note at the top
    import time

    from config.secret import client_broker
    from config.wire import format_ts
    from simulator.live.checkpoint import (
        HORIZON_LEAD_S,
        Checkpoint,
    )
    from simulator.live.clock import SimClock, start_epoch
    from simulator.live.outbox import Outbox
    from simulator.live.publisher import KEEPALIVE_S, SHOW_METERS, FleetLoop
    from simulator.live.reproduce import Model, resume
    from simulator.live.schedule import DEFAULT_CONNECT_RATE
    from simulator.live.start import outbox_retention, plan_start, warmup_seconds

    speed, start_s, seed = settings.speed, settings.start_s, _seed(settings)
    profile, climate = settings.profile, settings.climate
    fleet_size = _fleet_size(args)
    keepalive_s = KEEPALIVE_S if args.keepalive is None else parse_int_in(args.keepalive, "--keepalive", 1, 65_535)
    connect_rate = DEFAULT_CONNECT_RATE
    if args.connect_rate is not None:
        connect_rate = parse_float_in(args.connect_rate, "--connect-rate", 1.0, 1e6)
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
    faults = _faults(args)
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


def _fleet_size(args: argparse.Namespace) -> int | None:
    return None if args.fleet is None else parse_int_in(args.fleet, "--fleet", 1, MAX_FLEET)


def run_specs(args: argparse.Namespace) -> list[MeterSpec]:
    """The meters ``run``'s arguments name: ``--household``/``--households``, or a ``--fleet`` over them (over
    ``A``, ``B``, ``C`` if none is named), from ``--fleet-offset``."""
    households = list(args.household or [])
    if args.households is not None:
        households += [part.strip() for part in args.households.split(",") if part.strip()]
    fleet_size = _fleet_size(args)
    offset = 0 if args.fleet_offset is None else parse_int_in(args.fleet_offset, "--fleet-offset", 0, MAX_FLEET)
    return fleet_specs(run_templates(households, fleet_size), fleet_size, offset)


def _check_fd_limit(meters: int, key: str) -> None:
    """Raise the open-file limit to the hard limit, then refuse (before any meter connects) a fleet that cannot fit."""
    from config.fdlimit import check_fits, raise_soft_limit  # run only

    limit = raise_soft_limit(log)
    what = f"one socket per meter for {meters} meters plus {FD_MARGIN} for the outbox database, logs and the selector"
    check_fits(meters + FD_MARGIN, limit.soft, key, what)


# glibc's mallopt parameters (malloc.h): M_TRIM_THRESHOLD, M_MMAP_THRESHOLD.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def _keep_freed_memory() -> None:
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


def _generate(args: argparse.Namespace, settings: Settings) -> int:
    from simulator.dataset.writers import write_dataset  # pyarrow and tqdm: not loaded by the long-running `run`

    households = tuple(part.strip() for part in args.households.split(",") if part.strip())
    if not households:
        raise ConfigError("--households", "no households given")
    plan = DatasetPlan(
        days=parse_int_in(args.days, "--days", 1, MAX_DAYS),
        households=households,
        fleet_size=None if args.fleet is None else parse_int_in(args.fleet, "--fleet", 1, MAX_FLEET),
        profile=settings.profile,
        climate=settings.climate,
        tz=settings.tz,
        seed=_seed(settings),
        start_date=DEFAULT_START_DATE if args.start_date is None else _date(args.start_date, "--start-date"),
        faults=_faults(args),
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
    _keep_freed_memory()
    try:
        files = write_dataset(plan, Path(args.out), progress=sys.stderr.isatty())
    except OSError as exc:
        raise ConfigError("--out", f"cannot write there: {exc}") from exc
    for path in files:
        log.info("wrote %s", path)
    return 0


def _plot(args: argparse.Namespace, settings: Settings) -> int:
    require("matplotlib", PLOT, "python -m simulator plot")  # the plot extra
    from simulator.dataset.plot import day_figure, thermals_of  # matplotlib: not loaded by the long-running `run`

    day = _date(args.date, "--date")
    spec = fleet_specs([args.household])[0]
    zone = settings.zone()
    name, seed = settings.profile, _seed(settings)
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


_COMMANDS: dict[str, Callable[[argparse.Namespace, Settings], int]] = {
    "run": _run,
    "generate": _generate,
    "plot": _plot,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (2 for bad arguments or settings)."""
    try:
        words = sys.argv[1:] if argv is None else argv
        args = _parser(_command(words)).parse_args(words)
        settings = with_options(load_settings(os.environ), args)
        configure_logging(settings.log_level, "simulator")
        return _COMMANDS[args.command](args, settings)
    except ConfigError as exc:
        print(f"simulator: configuration error: {exc}", file=sys.stderr)
        return 2


def _exit_now(status: int) -> NoReturn:
    """End a finished ``generate`` without the interpreter's teardown: its files are closed (and renamed) by then,
    no thread is left, and the teardown only frees what the exit frees anyway (every module, ~8 ms). Logging's and
    the standard streams' buffers are flushed first, as the normal exit does; nothing else is registered to run."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    gc.freeze()  # the modules' objects: a full collection (one per ~40,000 new objects) no longer walks them
    gc.enable()
    status = main()
    if _command(sys.argv[1:]) == "generate":
        _exit_now(status)
    sys.exit(status)
