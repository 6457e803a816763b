"""The simulator's command line: the parser, its option tables per command, and the arguments turned into
settings and values (pure: argv and settings in, values or a ConfigError naming the option out)."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from datetime import date
from typing import Any, Final, NoReturn

from config.errors import ConfigError
from config.households import CLASSIC_ORDER
from config.parsing import parse_profile
from config.settings import (
    CLIMATE_NAMES,
    SIMULATOR,
    Settings,
    parse_broker_urls,
    parse_climate,
    parse_float_in,
    parse_int_in,
    parse_speed,
    parse_time_of_day,
    parse_tz,
    settings_help,
)
from simulator.dataset.plan import DEFAULT_START_DATE, FORMATS, LAYOUTS, MAX_DAYS
from simulator.meters.faults import ORIGINAL_TYPES, FaultConfig, parse_error_types
from simulator.meters.fleet import MAX_FLEET, fleet_specs
from simulator.profiles.factory import PROFILES
from simulator.profiles.spec import MeterSpec

USAGE: Final = """Command line of the simulator.

    python -m simulator run --household A [--household B ...] [--speed N] [--start HH:MM:SS] [--seed S]
    python -m simulator run --fleet 10000 [--households A,B,C] [--fleet-offset K] [--connect-rate 1000]
    python -m simulator generate --days 3 --households A,B,C --errors-every 25 --seed 1 --format csv --out DIR
    python -m simulator plot --household A --date 2024-01-01 --out day.png

Bad arguments or settings: one line on stderr and exit code 2.
"""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are ``ConfigError`` (one line, exit code 2 from ``main``), not SystemExit."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError("arguments", f"{message} (see {self.prog} --help)")


HELP = {
    "run": "run live meters that publish to an MQTT broker",
    "generate": "write a dataset of per-second readings (csv or parquet), with errors",
    "plot": "draw one local day of one household to an image (png)",
}


def command_in(argv: Sequence[str]) -> str | None:
    """The command named in ``argv`` (its first word that is one), if any."""
    return next((word for word in argv if word in HELP), None)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line; only ``command``'s options are added (all commands' if None): their help needs the modules
    of that command."""
    parser = _Parser(
        prog="python -m simulator",
        description=USAGE,
        epilog=settings_help(SIMULATOR),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    options = {"run": _run_options, "generate": _generate_options, "plot": _plot_options}
    for name, add in options.items():
        subparser = sub.add_parser(name, help=HELP[name])
        if command is None or command == name:
            add(subparser)
    return parser


def _run_options(run: argparse.ArgumentParser) -> None:
    from simulator.live.checkpoint import DEFAULT_RETENTION_S, FLEET_MODE_RETENTION_S  # run only
    from simulator.live.link import KEEPALIVE_S
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


def parse_date_arg(text: str, key: str) -> date:
    """An ISO date (``2024-01-01``) given to option ``key``, or a ConfigError naming it."""
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
        changes["profile"] = parse_profile(args.profile, "--profile", PROFILES)
    if args.climate is not None:
        changes["climate"] = parse_climate(args.climate, "--climate")
    if args.seed is not None:
        changes["seed"] = parse_int_in(args.seed, "--seed", 0, 2**63 - 1)
    if args.tz is not None:
        changes["tz"] = parse_tz(args.tz, "--tz")
    return dataclasses.replace(settings, **changes)


def faults_of(args: argparse.Namespace) -> FaultConfig | None:
    """The errors to inject (``--errors-every`` or ``--error-probability``, ``--error-types``), or None."""
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


def fleet_size_of(args: argparse.Namespace) -> int | None:
    """``--fleet`` checked (1 to ``MAX_FLEET``), or None without one."""
    return None if args.fleet is None else parse_int_in(args.fleet, "--fleet", 1, MAX_FLEET)


def keepalive_of(args: argparse.Namespace) -> int:
    """``run``'s ``--keepalive`` in seconds checked (1 to 65,535), or the default without one."""
    from simulator.live.link import KEEPALIVE_S  # run only

    return KEEPALIVE_S if args.keepalive is None else parse_int_in(args.keepalive, "--keepalive", 1, 65_535)


def connect_rate_of(args: argparse.Namespace) -> float:
    """``run``'s ``--connect-rate`` (new connections per second) checked, or the default without one."""
    from simulator.live.schedule import DEFAULT_CONNECT_RATE  # run only

    if args.connect_rate is None:
        return DEFAULT_CONNECT_RATE
    return parse_float_in(args.connect_rate, "--connect-rate", 1.0, 1e6)


def days_of(args: argparse.Namespace) -> int:
    """``generate``'s ``--days`` checked (1 to ``MAX_DAYS``)."""
    return parse_int_in(args.days, "--days", 1, MAX_DAYS)


def start_date_of(args: argparse.Namespace) -> date:
    """``generate``'s ``--start-date``, or the default first day without one."""
    return DEFAULT_START_DATE if args.start_date is None else parse_date_arg(args.start_date, "--start-date")


def run_specs(args: argparse.Namespace) -> list[MeterSpec]:
    """The meters ``run``'s arguments name: ``--household``/``--households``, or a ``--fleet`` over them (over
    ``A``, ``B``, ``C`` if none is named), from ``--fleet-offset``."""
    households = list(args.household or [])
    if args.households is not None:
        households += [part.strip() for part in args.households.split(",") if part.strip()]
    fleet_size = fleet_size_of(args)
    offset = 0 if args.fleet_offset is None else parse_int_in(args.fleet_offset, "--fleet-offset", 0, MAX_FLEET)
    return fleet_specs(_run_templates(households, fleet_size), fleet_size, offset)


def _run_templates(households: Sequence[str], fleet_size: int | None) -> list[str]:
    """The households a run's meters are made from: those given, or for a fleet given none, ``A``, ``B``, ``C``
    (the classic order). Meters without a fleet need their households named."""
    if households:
        return list(households)
    if fleet_size is None:
        raise ConfigError("--household", "give --household ID (repeatable), --households A,B,C or --fleet N")
    return list(CLASSIC_ORDER)
