"""Publish: N meters at 1 Hz from one simulator process against Mosquitto; how late is each reading, and at what cost?

For each fleet size: a fresh Mosquitto on a free loopback port (``max_connections -1``), then ``python -m simulator
run --fleet N --speed 1 --profile classic``. Once every meter is connected (the simulator logs it) the run lasts
``--seconds``; then SIGTERM, and the simulator's own stop line gives the lateness of every live reading since every
meter was connected (publish time minus its scheduled time: end of its second plus the meter's jitter offset). CPU
seconds per wall second come from ``/proc/<pid>/stat`` over the measured span, and per thread from
``/proc/<pid>/task/<tid>/stat`` (named by the simulator's ``threads:`` log line; Python does not name its threads for
the OS), memory from ``VmRSS``. The broker's CPU over the same span is printed too.

Baseline in the same run: Mosquitto's C client, ``mosquitto_pub -l -q 1``, sending ``N x seconds`` lines of a real
reading's payload to the same kind of broker as fast as it can: the machine's practical limit.

    python -m bench.publish [--meters 1000,10000] [--seconds 30] [--anonymous] [--cprofile FILE] [--connect-rate N]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import resource
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from config.credentials import meter_client_id
from config.topics import reading_topic
from config.wire import Reading, encode_reading
from simulator.meters.fleet import fleet_specs
from tests.support.procs import LOOPBACK, Proc, clean_env, login, python_module, start, start_broker

BROKER_LINES = ("max_connections -1", "max_queued_messages 1000")
CONNECTED = re.compile(r"all (\d+) meters connected after ([\d.]+) s")
LATENESS = re.compile(
    r"n=(\d+) held=(\d+) p50=([\d.]+)ms p99=([\d.]+)ms p99\.9=([\d.]+)ms max=([\d.]+)ms within 200ms: ([\d.]+)%"
)
CONNECT_TIMEOUT_S = 180.0
THREADS = re.compile(r"threads: (.+)$", re.MULTILINE)
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class FleetRun:
    """What one fleet run measured."""

    meters: int
    connect_s: float  # the simulator's own figure: from its loop's start
    online_s: float  # from the command's start until the bench saw that line (polled every 0.2 s)
    span_s: float
    cpu_s: float
    rss_kb: int
    lateness: tuple[str, ...]
    threads: tuple[tuple[str, float], ...]  # (name, CPU seconds over the span), busiest first
    broker_cpu_s: float

    def readings_per_s(self) -> float:
        """Live readings counted per second of the measured span."""
        return int(self.lateness[0]) / self.span_s


def _cpu_s(pid: int) -> float:
    return _cpu_s_of(Path(f"/proc/{pid}/stat"))


def _thread_cpu_s(pid: int) -> dict[int, float]:
    """CPU seconds of each live thread of ``pid``, by thread id (threads that ended meanwhile are not listed)."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, IndexError, ValueError):  # a thread may end while we read
            out[int(task.name)] = _cpu_s_of(task / "stat")
    return out


def _cpu_s_of(stat: Path) -> float:
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14, 15 of stat)


def _thread_names(pid: int, log: str) -> dict[int, str]:
    """Thread id -> name: from the simulator's ``threads: name=tid, ...`` line, else the OS's ``comm``."""
    names: dict[int, str] = {}
    found = THREADS.search(log)
    if found is not None:
        for part in found.group(1).split(", "):
            name, _, tid = part.rpartition("=")
            with contextlib.suppress(ValueError):
                names[int(tid)] = name
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, ValueError):
            names.setdefault(int(task.name), (task / "comm").read_text().strip() + f" ({task.name})")
    return names


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _wait_for(proc: Proc, pattern: re.Pattern[str], timeout_s: float) -> re.Match[str]:
    """Wait (on the process, bounded) until its log matches ``pattern``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = pattern.search(proc.log())
        if found is not None:
            return found
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.log()[-3000:]}")
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(timeout=0.2)
    raise TimeoutError(f"{proc.name}: no {pattern.pattern!r} within {timeout_s} s:\n{proc.log()[-3000:]}")


def run_fleet(
    meters: int, seconds: float, work: Path, anonymous: bool, cprofile: str | None, connect_rate: str | None = None
) -> FleetRun:
    """One fleet against a fresh broker; figures over ``seconds`` once every meter is connected."""
    logs = work / f"fleet-{meters}"
    ids = [spec.meter_id for spec in fleet_specs(["A", "B", "C"], meters)]
    t0 = time.monotonic()
    broker = start_broker("mosquitto", logs, meters=ids, anonymous=anonymous, mosquitto_lines=BROKER_LINES)
    print(f"[{meters}] broker up ({'anonymous' if anonymous else 'auth files'}) in {time.monotonic() - t0:.1f} s")
    env = {"FLEET_DATA_DIR": str(logs / "data"), "FLEET_MQTT_ANONYMOUS": str(anonymous).lower()}
    run = ["simulator", "run", "--broker", f"mqtt://{LOOPBACK}:{broker.port}", "--speed", "1", "--seed", "1"]
    run += ["--profile", "classic", "--households", "A,B,C", "--fleet", str(meters)]
    if connect_rate is not None:
        run += ["--connect-rate", connect_rate]
    argv = python_module("cProfile", "-o", cprofile, "-m", *run) if cprofile else python_module(*run)
    spawned = time.monotonic()
    sim = start("simulator", argv, logs, env=clean_env(env))
    try:
        found = _wait_for(sim, CONNECTED, CONNECT_TIMEOUT_S)
        online_s = time.monotonic() - spawned
        pid = sim.popen.pid
        start_cpu, start_threads, start_broker_cpu = _cpu_s(pid), _thread_cpu_s(pid), _cpu_s(broker.popen.pid)
        start_wall = time.monotonic()
        try:
            sim.popen.wait(timeout=seconds)
            raise RuntimeError(f"simulator exited early:\n{sim.log()[-3000:]}")
        except subprocess.TimeoutExpired:
            pass
        cpu, span = _cpu_s(pid) - start_cpu, time.monotonic() - start_wall
        broker_cpu = _cpu_s(broker.popen.pid) - start_broker_cpu
        names = _thread_names(pid, sim.log())
        used = [(names.get(tid, str(tid)), s - start_threads.get(tid, 0.0)) for tid, s in _thread_cpu_s(pid).items()]
        threads = sorted(used, key=lambda item: -item[1])
        rss = _rss_kb(pid)
        sim.stop(signal.SIGTERM, timeout=60)
        summary = _wait_for(sim, LATENESS, 10)
    finally:
        sim.stop()
        broker.stop()
    connect_s = float(found.group(2))
    return FleetRun(meters, connect_s, online_s, span, cpu, rss, summary.groups(), tuple(threads), broker_cpu)


def baseline(messages: int, work: Path, anonymous: bool) -> tuple[float, float]:
    """``mosquitto_pub -l -q 1`` sending ``messages`` reading payloads: (messages per second, CPU seconds)."""
    logs = work / "baseline"
    meter = "A-0001"
    broker = start_broker("mosquitto", logs, meters=[meter], anonymous=anonymous, mosquitto_lines=BROKER_LINES)
    payload = encode_reading(Reading(meter, 123_456, 1_704_067_200, 1500.0, 2000.0, 4500.5, 12.3456, 7.891, 44.4444))
    lines = logs / "lines.txt"
    lines.write_bytes((payload + b"\n") * messages)
    argv = ["mosquitto_pub", "-h", LOOPBACK, "-p", str(broker.port), "-l", "-q", "1", "-t", reading_topic(meter)]
    if not anonymous:
        auth = login(meter)
        argv += ["-u", auth["username"], "-P", auth["password"], "-i", meter_client_id(meter)]
    try:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        with lines.open("rb") as stdin:
            done = subprocess.run(argv, stdin=stdin, capture_output=True, timeout=600, check=False)
        elapsed = time.monotonic() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    finally:
        broker.stop()
    if done.returncode != 0:
        raise RuntimeError(f"mosquitto_pub failed ({done.returncode}): {done.stderr.decode(errors='replace')}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return messages / elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--meters", default="1000,10000", help="comma-separated fleet sizes, one run each")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured span once every meter is connected")
    parser.add_argument("--anonymous", action="store_true", help="broker lets anyone in (default: auth files)")
    parser.add_argument("--cprofile", metavar="FILE", help="run the largest fleet under cProfile, stats to FILE")
    parser.add_argument("--connect-rate", metavar="PER_S", help="the simulator's --connect-rate (default: its own)")
    args = parser.parse_args()
    sizes = [int(part) for part in args.meters.split(",") if part.strip()]
    work = Path(tempfile.mkdtemp(prefix="bench-publish-"))
    print(f"logs in {work}")
    runs = []
    for size in sizes:
        profile = str(Path(args.cprofile).resolve()) if args.cprofile and size == max(sizes) else None
        result = run_fleet(size, args.seconds, work, args.anonymous, profile, args.connect_rate)
        runs.append(result)
        n, held, p50, p99, p999, worst, within = result.lateness
        print(
            f"[{size}] all online {result.online_s:.1f} s after the command's start ({result.connect_s:.1f} s after "
            f"the loop's); over {result.span_s:.1f} s: {n} live readings "
            f"({result.readings_per_s():.0f}/s), {held} held; lateness p50 {p50} ms, p99 {p99} ms, p99.9 {p999} ms, "
            f"max {worst} ms; within 200 ms: {within}%"
        )
        load = result.cpu_s / result.span_s
        print(
            f"[{size}] CPU {load:.3f} s per s = {load / size * 1000:.3f} s per s per 1,000 meters; "
            f"RSS {result.rss_kb / 1024:.0f} MB = {result.rss_kb / size:.1f} KB per meter; "
            f"broker CPU {result.broker_cpu_s / result.span_s:.3f} s per s"
        )
        shown = [f"{name} {used / result.span_s * 100:.1f}%" for name, used in result.threads if used > 0]
        print(f"[{size}] CPU per thread (share of one core over the span): {', '.join(shown) or 'none'}")
    if len(runs) >= 2:
        small, large = runs[0], runs[-1]
        marginal = (large.rss_kb - small.rss_kb) / (large.meters - small.meters)
        print(f"memory per meter, marginal ({small.meters} -> {large.meters} meters): {marginal:.1f} KB")
    messages = int(max(sizes) * args.seconds)
    rate, cpu = baseline(messages, work, args.anonymous)
    base_us = cpu / messages * 1e6
    print(f"baseline mosquitto_pub -l -q 1: {messages} messages, {rate:.0f} msg/s, CPU {base_us:.1f} us/msg")
    for result in runs:
        per_msg = result.cpu_s / int(result.lateness[0]) * 1e6
        print(
            f"[{result.meters}] {result.readings_per_s():.0f} readings/s = {result.readings_per_s() / rate:.3f} of "
            f"mosquitto_pub's rate; CPU {per_msg:.1f} us per reading = {per_msg / base_us:.1f}x "
            f"mosquitto_pub's per message"
        )


if __name__ == "__main__":
    main()
