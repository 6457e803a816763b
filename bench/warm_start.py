"""Warm start: from `make up` on a fresh data directory, how long until the bridge serves a day of history?

Runs `make up` itself (`config.run.supervise` and the Procfile: the embedded amqtt broker, meters A, B, C, the bridge)
with this interpreter's virtualenv, a fresh temporary ``FLEET_DATA_DIR`` (no outbox, no history, no secret: a first
start) and free loopback ports, at ``FLEET_SPEED`` 1 unless ``--speed``; ``FLEET_WARMUP`` is left unset (the default, 24
h) unless ``--warmup``. From the start of `make` it polls every 0.5 s, each check until it first holds, and prints the
seconds it took:

- ``live``: the newest second the bridge holds of A, B and C is within 5 s of the simulated now (the meters start at
  the wall clock, UTC; every check below needs this too, so that "the last hour" is the real one, not an hour before
  a newest reading still hours old);
- ``qstats``: ``GET /stream_qstats?household=X&interval=3600`` answers 200 with ``"warming_up": false`` for A, B
  and C (at the end the same is checked once for every interval of ``--intervals``);
- ``last_hour``: what the dashboard asks for (``GET /dashboard/households``, then ``/stream_data`` with that
  household's ``start_index`` of an hour ago and ``pace=none``, 60 s windows) gives every window of the last hour,
  each with all 60 seconds, for A, B and C;
- ``replay_12h``: ``/stream_data?household=A&interval=60&start_index=<12 h before A's simulated now>&pace=none``
  starts at that window (not at a later one, not with ``event: reset``) and runs on to the last hour without a
  missing window or second;
- ``whole warm-up``: ``/api/meters`` says every seq of A, B and C from 0 on is held and none is missing.

Every wait is bounded (``--timeout``); a target not reached is printed as such. The load average is printed before and
after.

    python -m bench.warm_start [--timeout 300] [--speed 1] [--warmup 24h] [--intervals 1,5,60,900,3600] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from tests.support.procs import LOOPBACK, Proc, clean_env, free_ports, start

ROOT = Path(__file__).resolve().parents[1]
HOUSEHOLDS = ("A", "B", "C")
POLL_S = 0.5
HOUR_S = 3600
WINDOW_S = 60  # the windows asked for by the last-hour and 12-hour checks
REPLAY_BACK_S = 12 * 3600
LIVE_LAG_S = 5.0  # wall seconds a meter's newest reading held may lag the expected simulated now and count as live


def _get(port: int, path: str) -> tuple[int, dict[str, object]]:
    """GET a JSON document: status and body (an unreadable one as {})."""
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=10)
    try:
        conn.request("GET", path, headers={"Accept": "application/json"})
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    try:
        doc = json.loads(body)
    except ValueError:
        doc = {}
    return response.status, doc if isinstance(doc, dict) else {}


def _events(
    port: int, path: str, until_end_s: int, limit: int, timeout_s: float
) -> Iterator[tuple[str, dict[str, object]]]:
    """The SSE events (name, JSON data) of ``path`` until one whose window ends at or after ``until_end_s``, at most
    ``limit`` events, each read within ``timeout_s``."""
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout_s)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"{path}: {response.status} {response.read()[:300]!r}")
        name, data = "message", ""
        for _ in range(limit * 20):  # bounded: a handful of lines per event
            line = response.readline()
            if not line:
                return
            text = line.decode("utf-8").rstrip("\r\n")
            if text.startswith("event:"):
                name = text[6:].strip()
            elif text.startswith("data:"):
                data += text[5:].strip()
            elif text == "" and data:
                doc = json.loads(data)
                yield name, doc
                limit -= 1
                if limit <= 0 or (name == "message" and _end_s(doc) >= until_end_s):
                    return
                name, data = "message", ""
    finally:
        conn.close()


def _epoch(text: object) -> int:
    from config.wire import parse_ts

    return int(parse_ts(str(text)))


def _end_s(doc: dict[str, object]) -> int:
    return _epoch(doc.get("window_end"))


def _windows_complete(port: int, household: str, start_index: int, from_s: int, to_s: int) -> bool:
    """Whether ``/stream_data`` from ``start_index`` (paced none, 60 s windows) gives every window of
    [``from_s``, ``to_s``), each with every second, in order, from its first event on."""
    path = f"/stream_data?household={household}&interval={WINDOW_S}&start_index={start_index}&pace=none"
    expected = from_s
    count = (to_s - from_s) // WINDOW_S
    for name, doc in _events(port, path, to_s, count + 5, timeout_s=10):
        if name != "message":
            return False  # event: reset (history does not reach back) or anything but a window
        start = _epoch(doc.get("window_start"))
        if start != expected or doc.get("samples") != WINDOW_S:
            return False
        expected += WINDOW_S
        if expected >= to_s:
            return True
    return False


def _households(port: int) -> dict[str, dict[str, object]]:
    _, doc = _get(port, "/dashboard/households")
    rows = doc.get("households", [])
    return {str(row["household"]): row for row in rows if isinstance(row, dict)} if isinstance(rows, list) else {}


class SimNow:
    """The meters' simulated time now, as the bench expects it: they start at the wall clock (UTC, no FLEET_START)
    when `make` starts, less their start-up, and run at ``speed``."""

    def __init__(self, speed: float) -> None:
        self.origin = time.time()
        self.speed = speed

    def __call__(self) -> float:
        return self.origin + (time.time() - self.origin) * self.speed

    def caught_up(self, watermark_s: int) -> bool:
        """Whether a meter's newest second held is within LIVE_LAG_S of wall time of now: its backlog is in."""
        return watermark_s >= self() - LIVE_LAG_S * self.speed


def live(port: int, now: SimNow) -> bool:
    """The bridge holds each of A, B and C up to about now (the warm-up's backlog is in: the catch-up is over)."""
    rows = _households(port)
    return all(
        household in rows
        and rows[household].get("now_s") is not None
        and now.caught_up(int(str(rows[household]["now_s"])))
        for household in HOUSEHOLDS
    )


def qstats_ready(port: int, interval_s: int = HOUR_S) -> bool:
    """A, B and C answer 200 with ``warming_up: false`` at ``interval_s``."""
    for household in HOUSEHOLDS:
        status, doc = _get(port, f"/stream_qstats?household={household}&interval={interval_s}")
        if status != 200 or doc.get("warming_up") is not False:
            return False
    return True


def last_hour_ready(port: int) -> bool:
    """The dashboard's request for each of A, B and C gives the whole last hour in full 60 s windows."""
    rows = _households(port)
    for household in HOUSEHOLDS:
        row = rows.get(household)
        if row is None or row.get("start_index") is None or row.get("now_s") is None:
            return False
        now_s = int(str(row["now_s"]))
        # The page's start_index: an hour before the meter's now; the windows from the one holding it to the newest
        # finished one must all be there.
        first = (now_s - HOUR_S) // WINDOW_S * WINDOW_S
        last_end = now_s // WINDOW_S * WINDOW_S
        if not _windows_complete(port, household, int(str(row["start_index"])), first, last_end):
            return False
    return True


def replay_ready(port: int) -> bool:
    """A 12-hour-old ``start_index`` for A replays from its window on, none missing, to the last hour."""
    row = _households(port).get("A")
    if row is None or row.get("now_s") is None:
        return False
    now_s = int(str(row["now_s"]))
    then = now_s - REPLAY_BACK_S
    midnight = then - then % 86_400  # FLEET_TZ is UTC here: local midnight is the UTC one
    first = then // WINDOW_S * WINDOW_S
    return _windows_complete(port, "A", then - midnight, first, (now_s - HOUR_S) // WINDOW_S * WINDOW_S)


def backlog_in(port: int, now: SimNow) -> bool:
    """Every seq of A, B and C from 0 up to about now is held: the whole warm-up arrived, nothing open."""
    _, doc = _get(port, "/api/meters")
    meters = doc.get("meters", {})
    if not isinstance(meters, dict) or not live(port, now):
        return False
    for household in HOUSEHOLDS:
        figures = meters.get(household)
        if not isinstance(figures, dict) or figures.get("last_seq") is None:
            return False
        if figures.get("gaps_open") != 0 or int(figures["received"]) < int(figures["last_seq"]) + 1:
            return False
    return True


def _watch(checks: dict[str, Callable[[], bool]], t0: float, deadline: float, proc: Proc) -> dict[str, float | None]:
    """Seconds from ``t0`` until each check first holds (all polled every POLL_S, in order), None if not by
    ``deadline``."""
    reached: dict[str, float | None] = dict.fromkeys(checks)
    tick = threading.Event()
    while time.monotonic() < deadline and any(value is None for value in reached.values()):
        if not proc.alive():
            raise RuntimeError(f"make up exited with {proc.popen.returncode}:\n{proc.log()[-3000:]}")
        for name, check in checks.items():
            if reached[name] is not None:
                continue
            ok = False
            with contextlib.suppress(OSError, ValueError, RuntimeError, KeyError):
                ok = check()
            if ok:
                reached[name] = time.monotonic() - t0
                print(f"{name}: {reached[name]:.1f} s", flush=True)
        tick.wait(POLL_S)
    for name, value in reached.items():
        if value is None:
            print(f"{name}: not within the timeout", flush=True)
    return reached


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit code 1 if a target was not reached within the timeout."""
    parser = argparse.ArgumentParser(prog="python -m bench.warm_start", description=__doc__.split("\n\n")[0])
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for each target (default 300)")
    parser.add_argument("--speed", default="1", help="FLEET_SPEED (default 1)")
    parser.add_argument("--warmup", help="FLEET_WARMUP (default: unset, the simulator's default)")
    parser.add_argument("--intervals", default="1,5,15,60,300,900,3600", help="qstats intervals checked at the end")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, data)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-warm-start-"))
    mqtt_port, http_port = free_ports(2)
    extra = {
        "FLEET_MQTT_PORT": str(mqtt_port),
        "FLEET_HTTP_PORT": str(http_port),
        "FLEET_SPEED": args.speed,
        "FLEET_DATA_DIR": str(work / "data"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    env = clean_env(extra)
    # As a newcomer runs it: no secret given (the processes make one in the data directory), the default warm-up.
    for key in ("FLEET_MQTT_SECRET", "FLEET_WARMUP"):
        env.pop(key, None)
    if args.warmup is not None:
        env["FLEET_WARMUP"] = args.warmup
    print(f"load average before: {_load()}; work directory {work}", flush=True)
    t0 = time.monotonic()
    now = SimNow(float(args.speed))
    makeup = start("make-up", ["make", "-C", str(ROOT), "--no-print-directory", "up", f"VENV={sys.prefix}"], work, env)
    reached: dict[str, float | None] = {}
    try:
        makeup.wait_port(http_port, timeout=60)
        print(f"bridge listening: {time.monotonic() - t0:.1f} s", flush=True)
        checks: dict[str, Callable[[], bool]] = {
            "A, B, C live (newest second held is now)": lambda: live(http_port, now),
            "qstats interval 3600 s: 200, warming_up false (A, B, C)": lambda: (
                live(http_port, now) and qstats_ready(http_port)
            ),
            "dashboard: full last hour (A, B, C)": lambda: live(http_port, now) and last_hour_ready(http_port),
            "start_index 12 h back replays from history (A)": lambda: live(http_port, now) and replay_ready(http_port),
            "whole warm-up in: every seq held, no gap (A, B, C)": lambda: backlog_in(http_port, now),
        }
        reached = _watch(checks, t0, time.monotonic() + args.timeout, makeup)
        targets = list(reached.values())[1:4]
        if all(value is not None for value in targets):
            print(f"the three targets: {max(v for v in targets if v is not None):.1f} s", flush=True)
        for interval in (int(part) for part in args.intervals.split(",") if part.strip()):
            print(f"qstats interval {interval} s warming_up false (A, B, C): {qstats_ready(http_port, interval)}")
        _, doc = _get(http_port, "/api/meters")
        meters = doc.get("meters")
        for household in HOUSEHOLDS:
            figures = meters.get(household) if isinstance(meters, dict) else None
            keys = ("received", "duplicates", "gaps_open", "gaps_repaired", "replay_requested")
            if isinstance(figures, dict):
                print(f"meter {household}: " + ", ".join(f"{k} {figures.get(k)}" for k in keys))
    finally:
        print(f"load average after: {_load()}", flush=True)
        makeup.stop(signal.SIGTERM, timeout=20)
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if all(value is not None for value in reached.values()) and reached else 1


if __name__ == "__main__":
    sys.exit(main())
