"""How many SSE clients can one bridge process hold, with every window delivered, and how late?

Real processes on loopback at real time (speed 1): a broker, meters A, B and C, the bridge (gunicorn, one gevent
worker). First a baseline of one client, then N clients at once (asyncio sockets in this process, connects paced in
batches), all on ``/stream_data?household=A&interval=I``, for a span of windows. For each client: every window of
the span received exactly once, in order; latency = arrival wall time - window end (simulated time = wall time at
speed 1). Memory: the bridge worker's resident set before and with the clients. The bridge's grace (FLEET_GRACE_S)
is in every latency: ``--grace``, default the bridge's (0 s).

    python -m bench.sse_clients [--clients 2000] [--interval 2] [--windows 15] [--broker mosquitto|amqtt] [--grace 0]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from config.settings import DEFAULT_GRACE_S
from tests.support.procs import Proc, children, running, start_bridge, start_broker, start_meters
from tests.support.sseload import Client, ClientLoad, common_span


def _run_clients(port: int, count: int, path: str, seconds: float, batch: int) -> list[Client]:
    """``count`` clients on ``path`` for ``seconds`` (connects ``batch`` at a time, 50 ms apart)."""
    load = ClientLoad(port, [path] * count, batch=batch, read_timeout_s=seconds + 5)
    load.start()
    load.wait(lambda clients: False, seconds)  # the benchmark's run time: nothing to wait for but the clock
    load.stop()
    return load.clients


def _worker_rss_mb(bridge: Proc) -> float:
    """Resident memory of the bridge's gunicorn worker (the child of the master)."""
    status = Path(f"/proc/{children(bridge.popen.pid)[0]}/status").read_text()
    kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    return kb / 1024


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


def _report(name: str, clients: list[Client], interval: int, windows: int) -> float:
    complete, span, lat = _measure(clients, interval, windows)
    errors = sum(1 for c in clients if c.error)
    ordered = sorted(lat) or [float("nan")]
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    print(
        f"{name}: {len(clients)} clients, {complete} got every one of {span} windows, {errors} errors; latency after"
        f" window end: median {statistics.median(ordered) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms,"
        f" max {ordered[-1] * 1000:.0f} ms"
    )
    return p95


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--interval", type=int, default=2)
    parser.add_argument("--windows", type=int, default=15)
    parser.add_argument("--broker", choices=["amqtt", "mosquitto"], default="mosquitto")
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--grace", type=int, default=DEFAULT_GRACE_S)
    args = parser.parse_args()
    logs = Path(tempfile.mkdtemp(prefix="bench-sse-"))
    broker = start_broker(args.broker, logs)
    bridge = start_bridge(broker.port or 0, logs, env={"FLEET_SPEED": "1", "FLEET_GRACE_S": str(args.grace)})
    meters = start_meters(broker.port or 0, ["A", "B", "C"], logs, speed=1.0)
    path = f"/stream_data?household=A&interval={args.interval}&pace=none"
    seconds = args.interval * (args.windows + 2)
    with running(broker, bridge, meters):
        idle_mb = _worker_rss_mb(bridge)
        one = _run_clients(bridge.port or 0, 1, path, seconds, 1)
        ramp = args.clients / args.batch * 0.05
        started = time.perf_counter()
        many = _run_clients(bridge.port or 0, args.clients, path, seconds + ramp + 2, args.batch)
        wall = time.perf_counter() - started
        loaded_mb = _worker_rss_mb(bridge)
    print(f"broker={args.broker} interval={args.interval}s windows={args.windows} speed=1 grace={args.grace}s")
    base = _report("baseline", one, args.interval, args.windows)
    p95 = _report(f"{args.clients} clients", many, args.interval, args.windows)
    print(f"p95 ratio to the one-client baseline: {p95 / base:.2f}x; run {wall:.0f} s")
    print(
        f"bridge worker memory: {idle_mb:.0f} MB idle -> {loaded_mb:.0f} MB after {args.clients} clients "
        f"({(loaded_mb - idle_mb) * 1024 / args.clients:.0f} KB per client)"
    )


if __name__ == "__main__":
    main()
