"""Command line: ``python -m simulator run --household A [--household B ...] [--speed N] [--start HH:MM:SS]``."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from types import FrameType

import numpy as np

from config.errors import ConfigError
from config.households import CLASSIC_ORDER
from config.logs import configure_logging
from config.settings import Settings, load_settings, parse_broker_url, parse_speed, parse_time_of_day
from simulator.clock import SimClock, start_epoch
from simulator.fleet import build_meters, fleet_specs
from simulator.publisher import FleetLoop

log = logging.getLogger("simulator")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m simulator", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run live meters that publish to an MQTT broker")
    run.add_argument(
        "--household",
        action="append",
        required=True,
        metavar="ID",
        help=f"household to run (repeatable): {', '.join(CLASSIC_ORDER)}",
    )
    run.add_argument("--broker", help="mqtt://[user:pass@]host:port (default from FLEET_BROKER / FLEET_MQTT_*)")
    run.add_argument("--speed", help="simulated seconds per wall second (default FLEET_SPEED or 1)")
    run.add_argument("--start", help="simulated time of day to start at, HH:MM:SS (default: now)")
    run.add_argument("--seed", type=int, help="fleet seed (default FLEET_SEED or fresh entropy)")
    return parser


def _run(args: argparse.Namespace, settings: Settings) -> int:
    broker = parse_broker_url(args.broker, "--broker") if args.broker else settings.broker
    speed = parse_speed(args.speed, "--speed") if args.speed else settings.speed
    start_s = parse_time_of_day(args.start, "--start") if args.start else settings.start_s
    seed = args.seed if args.seed is not None else settings.seed
    if seed is None:
        seed = int(np.random.SeedSequence().entropy) % 2**63  # type: ignore[arg-type]
    if seed < 0:
        raise ConfigError("--seed", "must be >= 0")
    specs = fleet_specs(args.household)
    ids = [spec.meter_id for spec in specs]
    zone = settings.zone()
    sim_start = start_epoch(time.time(), zone, start_s)
    clock = SimClock(wall_origin=time.monotonic(), sim_origin=sim_start, speed=speed)
    loop = FleetLoop(build_meters(specs, seed, zone, sim_start, settings.profile), broker, clock)

    def _stop(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        loop.stop()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    log.info(
        "meters %s: profile %s, seed %d, speed %g, tz %s, broker %s",
        ",".join(ids),
        settings.profile,
        seed,
        speed,
        settings.tz,
        broker.url(),
    )
    loop.run()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (2 for bad settings)."""
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(os.environ)
        configure_logging(settings.log_level, "simulator")
        return _run(args, settings)
    except ConfigError as exc:
        print(f"simulator: configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
