"""The dashboard against a real fleet on loopback: shared by its integration test and by the README's screenshot.

``python -m tests.support.dashboard --out docs/img/dashboard.png`` starts the embedded broker, the bridge and meters A,
B and C (realistic profile, seed 1, 120x from 17:10 so the last hour covers A coming home at 18:00), waits until the
bridge holds the hour, then loads ``GET /`` in headless Chromium with ``?selftest=0`` (each panel closes its stream
once it has replayed the hour) and saves the screenshot. Every wait is bounded.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from config.settings import parse_time_of_day
from config.wire import parse_ts
from tests.support.chromium import chromium_missing, render
from tests.support.procs import start_bridge, start_broker, start_meters
from tests.support.sse import SSEClient

HOUSEHOLDS = ("A", "B", "C")
WINDOW = (1280, 1150)  # three panels, no scrolling


def page_url(port: int, households: Sequence[str], interval_s: int, selftest: int) -> str:
    """The dashboard showing ``households`` at ``interval_s``, self-testing (see
    ``bridge/http/static/dashboard.js``)."""
    chosen = "&".join(f"household={h}" for h in households)
    return f"http://127.0.0.1:{port}/?{chosen}&interval={interval_s}&selftest={selftest}"


def wait_for_history(port: int, household: str, from_s: int, until_s: int, max_events: int = 500) -> None:
    """Read ``household``'s 60 s windows from ``from_s`` (seconds into the day) until one ends at ``until_s``."""
    client = SSEClient(port, f"/stream_data?household={household}&interval=60&start_index={from_s}&pace=none")
    try:
        for _ in range(max_events):  # each read times out on its own
            doc = client.next_data_event().json()
            if parse_ts(str(doc["window_end"])) % 86_400 >= until_s:
                return
    finally:
        client.close()
    raise TimeoutError(f"household {household} did not reach {until_s} s into the day")


def screenshot(
    out: Path, *, profile: str, climate: str, speed: float, start: str, minutes: int, interval_s: int
) -> Path:
    """Run a fleet, let the dashboard catch up with its last hour, save a PNG of it to ``out``."""
    start_s = parse_time_of_day(start, "--start")
    if start_s + minutes * 60 >= 86_400:
        raise ValueError("--start plus --minutes must stay within the simulated day")
    with tempfile.TemporaryDirectory(prefix="dashboard-") as work:
        logs = Path(work) / "logs"
        env = {"FLEET_DATA_DIR": str(Path(work) / "data"), "FLEET_SPEED": str(speed)}
        procs = [start_broker("amqtt", logs)]
        try:
            broker_port = procs[0].port or 0
            procs.append(start_bridge(broker_port, logs, env=env))
            bridge_port = procs[1].port or 0
            procs.append(
                start_meters(
                    broker_port,
                    HOUSEHOLDS,
                    logs,
                    speed=speed,
                    start_at=start,
                    profile=profile,
                    env={"FLEET_CLIMATE": climate},
                )
            )
            wait_for_history(bridge_port, "A", start_s, start_s + minutes * 60)
            render(page_url(bridge_port, HOUSEHOLDS, interval_s, selftest=0), screenshot=out, window=WINDOW)
        finally:
            for proc in reversed(procs):
                proc.stop()
    return out


def main(argv: list[str] | None = None) -> int:
    """Entry point: make the screenshot."""
    parser = argparse.ArgumentParser(prog="python -m tests.support.dashboard", description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    parser.add_argument("--profile", default="realistic", choices=["realistic", "classic"])
    parser.add_argument("--climate", default="new-delhi", help="climate of the realistic profile")
    parser.add_argument("--speed", type=float, default=120.0, help="simulated seconds per wall second")
    parser.add_argument("--start", default="17:10:00", help="simulated time of day the meters start at")
    parser.add_argument("--minutes", type=int, default=70, help="simulated minutes to run before the screenshot")
    parser.add_argument("--interval", type=int, default=15, help="window length of the charts, seconds")
    args = parser.parse_args(argv)
    missing = chromium_missing()
    if missing is not None:
        print(missing, file=sys.stderr)
        return 2
    path = screenshot(
        args.out,
        profile=args.profile,
        climate=args.climate,
        speed=args.speed,
        start=args.start,
        minutes=args.minutes,
        interval_s=args.interval,
    )
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
