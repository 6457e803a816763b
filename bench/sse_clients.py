"""How many SSE clients can one bridge process hold, with every window delivered, and how late?

Real processes on loopback at real time (speed 1): a broker, meters A, B and C, the bridge (gunicorn, one gevent
worker). First a baseline of one client, then N clients at once (asyncio sockets in this process, connects paced in
batches), all on ``/stream_data?household=A&interval=I``, for a span of windows. For each client: every window of
the span received exactly once, in order; latency = arrival wall time - window end (simulated time = wall time at
speed 1). Connect time: from the first connect to the last client's status line. Memory: the bridge worker's
resident set before the clients and while all N are connected (at the end of the span). The bridge's grace
(FLEET_GRACE_S) is in every latency: ``--grace``, default the bridge's (0 s).

This process holds N sockets: it raises its own open-file soft limit to the hard limit first (``config.run.fdlimit``),
and so does the bridge. The clients and the bridge share the machine: the clients' own reading time (one asyncio
thread parsing N events per window) is in the latencies too.

    python -m bench.sse_clients [--clients 2000] [--interval 2] [--windows 15] [--broker mosquitto|amqtt] [--grace 0]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from config.run.fdlimit import check_fits, raise_soft_limit
from config.settings import DEFAULT_GRACE_S
from tests.support.procs import Proc, children, running, start_bridge, start_broker, start_meters
from tests.support.sseload import Client, ClientLoad, common_span

FD_MARGIN = 100  # this process's descriptors besides the clients' sockets: the processes' logs and pipes, asyncio


@dataclass
class Run:
    """One load's clients, the seconds until all were answered (None: some never were), and the worker's RSS (MB)
    while they were all connected."""

    clients: list[Client]
    connect_s: float | None
    rss_mb: float
    loop_lags: list[tuple[float, float]]


def _run_clients(bridge: Proc, count: int, path: str, seconds: float, batch: int) -> Run:
    """``count`` clients on ``path`` for ``seconds`` after the last is answered (connects ``batch`` at a time, 50 ms
    apart); the worker's memory is read at the end, before they disconnect."""
    load = ClientLoad(bridge.port or 0, [path] * count, batch=batch, read_timeout_s=seconds + 5)
    started = time.time()
    load.start()
    ramp_s = count / batch * load.ramp_s
    answered = load.wait(lambda clients: all(c.answered or c.error for c in clients), ramp_s + 60)
    connect_s = None
    if answered:
        connect_s = load.snapshot(lambda clients: max((c.answered or started) for c in clients)) - started
    load.wait(lambda clients: False, seconds)  # the benchmark's run time: nothing to wait for but the clock
    rss_mb = _worker_rss_mb(bridge)
    load.stop()
    return Run(load.clients, connect_s, rss_mb, load.loop_lags)


def _worker_rss_mb(bridge: Proc) -> float:
    """Resident memory of the bridge's gunicorn worker (the child of the master)."""
    status = Path(f"/proc/{children(bridge.popen.pid)[0]}/status").read_text()
    kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    return kb / 1024


def _worker_fd_limit(bridge: Proc) -> str:
    """The worker's soft open-file limit, as /proc says."""
    limits = Path(f"/proc/{children(bridge.popen.pid)[0]}/limits").read_text()
    line = next(line for line in limits.splitlines() if line.startswith("Max open files"))
    return line.split()[3]


def _measure(clients: list[Client], interval: int, windows: int) -> tuple[int, int, list[float]]:
    """Clients that got every window of the common span, the span's length, and all latencies in it."""
    span = common_span(clients, interval)[:windows]
    if not span:
        return 0, 0, []
    complete, latencies = 0, []
    for c in clients:
        got = dict(zip(c.ids, c.arrivals, strict=True))
        if all(w in got for w in span) and len(c.ids) == len(set(c.ids)) and c.ids == sorted(c.ids):
            complete += 1
        latencies += [got[w] - w for w in span if w in got]
    return complete, len(span), latencies


def _report(name: str, run: Run, interval: int, windows: int) -> float:
    complete, span, lat = _measure(run.clients, interval, windows)
    errors = sum(1 for c in run.clients if c.error)
    ordered = sorted(lat) or [float("nan")]
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    connect = "not all answered" if run.connect_s is None else f"{run.connect_s:.1f} s"
    print(
        f"{name}: {len(run.clients)} clients, connected in {connect}, {complete} got every one of {span} windows once"
        f" and in order, {errors} errors; latency after window end: median {statistics.median(ordered) * 1000:.0f}"
        f" ms, p95 {p95 * 1000:.0f} ms, max {ordered[-1] * 1000:.0f} ms"
    )
    span_ends = common_span(run.clients, interval)[:windows]
    by_window = [sorted(c.arrivals[c.ids.index(w)] - w for c in run.clients if w in c.ids) for w in span_ends]
    if len(run.clients) > 1 and all(by_window):  # does lateness build up over the run, or stay per window?
        p95s = [f"{late[round(0.95 * (len(late) - 1))]:.2f}" for late in by_window]
        print(f"  p95 per window (s): {' '.join(p95s)}")
        # The client loop's own lateness over the span: a part of every latency above that the bridge did not cause.
        lags = sorted(lag for at, lag in run.loop_lags if span_ends[0] - interval <= at <= span_ends[-1] + 1)
        if lags:
            print(
                f"  client loop late by: median {statistics.median(lags) * 1000:.0f} ms, max {lags[-1] * 1000:.0f} ms"
            )
    firsts = sorted({c.error for c in run.clients if c.error})[:3]
    if firsts:
        print(f"  errors, first kinds: {firsts}")
    return p95


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--interval", type=int, default=2)
    parser.add_argument("--windows", type=int, default=15)
    parser.add_argument("--broker", choices=["amqtt", "mosquitto"], default="mosquitto")
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--grace", type=int, default=DEFAULT_GRACE_S)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    limit = raise_soft_limit(logging.getLogger("bench.sse_clients"))
    check_fits(args.clients + FD_MARGIN, limit.soft, "--clients", f"one socket per client plus {FD_MARGIN}")
    print(f"load average at start: {_load()}")
    logs = Path(tempfile.mkdtemp(prefix="bench-sse-"))
    broker = start_broker(args.broker, logs)
    bridge = start_bridge(broker.port or 0, logs, env={"FLEET_SPEED": "1", "FLEET_GRACE_S": str(args.grace)})
    meters = start_meters(broker.port or 0, ["A", "B", "C"], logs, speed=1.0)
    path = f"/stream_data?household=A&interval={args.interval}&pace=none"
    seconds = args.interval * (args.windows + 2)
    with running(broker, bridge, meters):
        worker_limit = _worker_fd_limit(bridge)
        idle_mb = _worker_rss_mb(bridge)
        one = _run_clients(bridge, 1, path, seconds, 1)
        started = time.perf_counter()
        many = _run_clients(bridge, args.clients, path, seconds, args.batch)
        wall = time.perf_counter() - started
    print(f"load average at end: {_load()}")
    print(
        f"broker={args.broker} interval={args.interval}s windows={args.windows} speed=1 grace={args.grace}s"
        f" batch={args.batch}/50ms; open-file soft limit: bench {limit.before} -> {limit.soft}, bridge worker"
        f" {worker_limit}"
    )
    base = _report("baseline", one, args.interval, args.windows)
    p95 = _report(f"{args.clients} clients", many, args.interval, args.windows)
    print(f"p95 ratio to the one-client baseline: {p95 / base:.2f}x; run {wall:.0f} s")
    print(
        f"bridge worker memory: {idle_mb:.0f} MB idle, {one.rss_mb:.0f} MB with 1 client, {many.rss_mb:.0f} MB with"
        f" {args.clients} clients ({(many.rss_mb - idle_mb) * 1024 / args.clients:.0f} KB per client)"
    )
    print(f"logs: {logs}")


if __name__ == "__main__":
    main()
