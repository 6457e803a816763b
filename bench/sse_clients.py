"""How many SSE clients can one bridge process hold, with every window delivered, and how late?

Real processes on loopback at real time (speed 1): a broker, meters A, B and C, the bridge (gunicorn, one gevent
worker). First a baseline of one client, then N clients at once (asyncio sockets in this process, connects paced in
batches), all on ``/stream_data?household=A&interval=I``, for a span of windows. For each client: every window of
the span received exactly once, in order; latency = arrival wall time - window end (simulated time = wall time at
speed 1). Memory: the bridge worker's resident set before and with the clients.

    python -m bench.sse_clients [--clients 2000] [--interval 2] [--windows 15] [--broker mosquitto|amqtt]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.procs import Proc, running, start_bridge, start_broker, start_meters


@dataclass
class Client:
    """What one client saw: window end ids and arrival times."""

    ids: list[int] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    error: str | None = None


async def _stream(port: int, path: str, client: Client, until: float) -> None:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n".encode())
        await writer.drain()
        while time.time() < until:
            line = await asyncio.wait_for(reader.readline(), timeout=max(0.1, until - time.time()))
            if not line:
                client.error = "closed"
                break
            if line.startswith(b"id: "):
                client.ids.append(int(line[4:].strip()))
                client.arrivals.append(time.time())
        writer.close()
    except TimeoutError:
        pass
    except OSError as exc:
        client.error = repr(exc)


async def _run_clients(port: int, count: int, path: str, seconds: float, batch: int) -> list[Client]:
    clients = [Client() for _ in range(count)]
    until = time.time() + seconds
    tasks = []
    for start in range(0, count, batch):
        tasks += [asyncio.create_task(_stream(port, path, c, until)) for c in clients[start : start + batch]]
        await asyncio.sleep(0.05)  # pace the connects: a benchmark's own ramp, not a wait for a result
    await asyncio.gather(*tasks)
    return clients


def _worker_rss_mb(bridge: Proc) -> float:
    """Resident memory of the bridge's gunicorn worker (the child of the master)."""
    children = Path(f"/proc/{bridge.popen.pid}/task/{bridge.popen.pid}/children").read_text().split()
    status = Path(f"/proc/{children[0]}/status").read_text()
    kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    return kb / 1024


def _measure(clients: list[Client], interval: int, windows: int) -> tuple[int, int, list[float]]:
    """Clients that got every window of the common span, the span's length, and all latencies in it."""
    firsts = [c.ids[0] for c in clients if c.ids]
    lasts = [c.ids[-1] for c in clients if c.ids]
    if not firsts:
        return 0, 0, []
    # Each client's first event is the newest window already final when it connected (sent at once): not a live
    # delivery, so the span starts one window after the last client's first.
    span = list(range(max(firsts) + interval, min(lasts) + 1, interval))[:windows]
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
    args = parser.parse_args()
    logs = Path(tempfile.mkdtemp(prefix="bench-sse-"))
    broker = start_broker(args.broker, logs)
    bridge = start_bridge(broker.port or 0, logs, env={"FLEET_SPEED": "1", "FLEET_GRACE_S": "1"})
    meters = start_meters(broker.port or 0, ["A", "B", "C"], logs, speed=1.0)
    path = f"/stream_data?household=A&interval={args.interval}&pace=none"
    seconds = args.interval * (args.windows + 2)
    with running(broker, bridge, meters):
        idle_mb = _worker_rss_mb(bridge)
        one = asyncio.run(_run_clients(bridge.port or 0, 1, path, seconds, 1))
        ramp = args.clients / args.batch * 0.05
        started = time.perf_counter()
        many = asyncio.run(_run_clients(bridge.port or 0, args.clients, path, seconds + ramp + 2, args.batch))
        wall = time.perf_counter() - started
        loaded_mb = _worker_rss_mb(bridge)
    print(f"broker={args.broker} interval={args.interval}s windows={args.windows} speed=1 grace=1s")
    base = _report("baseline", one, args.interval, args.windows)
    p95 = _report(f"{args.clients} clients", many, args.interval, args.windows)
    print(f"p95 ratio to the one-client baseline: {p95 / base:.2f}x; run {wall:.0f} s")
    print(
        f"bridge worker memory: {idle_mb:.0f} MB idle -> {loaded_mb:.0f} MB after {args.clients} clients "
        f"({(loaded_mb - idle_mb) * 1024 / args.clients:.0f} KB per client)"
    )


if __name__ == "__main__":
    main()
