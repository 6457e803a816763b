"""How many single-reading messages a second does the deployed bridge process take, measured from outside?

``python -m bridge`` as the README starts it (gunicorn, one gevent worker), its persistent MQTT session holding a
backlog of ``--readings`` single-reading QoS 1 messages from ``--meters`` meters, drains them while ``--clients`` SSE
clients stream those meters' windows. In one run:

1. Mosquitto with authentication on a free loopback port (persistence on, ``max_queued_messages`` above the backlog,
   the production ``max_inflight_messages 100``); the bridge is started once so that its persistent session exists,
   then stopped; a ``mosquitto_sub`` persistent session with the bridge's subscriptions is registered the same way.
2. ``mosquitto_pub -l -q 1`` per meter, logged in as that meter (``bench.ingest.publish``), queues the backlog for
   both sessions. The broker is then stopped (it saves its queues) and the bridge started while the broker is away,
   so that the SSE clients (``tests.support.sseload``, one asyncio thread) can connect before anything is drained.
3. The broker is started again on the same port: the bridge reconnects (its own back-off) and drains its queue.
   ``/api/meters`` is polled every ``POLL_S``: readings accepted per second from the ``received`` counts (from the
   first poll that saw readings to the last that had not seen them all), the worker's CPU (``/proc``) over the same
   span, and each meter's progress, from which the wall time each window became final is interpolated (a meter's seqs
   arrive in order).
4. The bridge is stopped (its store commits) and its SQLite store checked: every (meter, seq) exactly once.
5. Baseline: ``mosquitto_sub`` drains its own copy of the backlog from the same broker (``bench.ingest``).

SSE clients: ``household=<meter>&interval=--interval&start_index=0&pace=none``, spread over the meters; each should
get every window of its meter that the backlog completes; latency = arrival - the interpolated time the window became
final. Every process shares this machine's cores with this benchmark (publishers and SSE clients run here).

    python -m bench.bridge_ingest [--meters 200] [--readings 100000] [--clients 1000] [--interval 60] [--py-spy FILE]

``--py-spy FILE``: py-spy (``pip install py-spy``; ptrace rights) samples the worker during the drain, collapsed
stacks into FILE (``python -m bench.stacks FILE`` sums them by function).
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench.ingest import (
    START_TS,
    TARGET_PER_S,
    drain_mosquitto_sub,
    fleet_payloads,
    publish,
    register_session,
    single_messages,
)
from bench.publish import _cpu_s
from bridge.ingest.store import FILE_NAME
from tests.support.procs import (
    LOOPBACK,
    Proc,
    children,
    mosquitto_missing,
    running,
    start_bridge,
    start_broker,
)
from tests.support.sseload import Client, ClientLoad

POLL_S = 0.2
SUB_ID = "bench-sub-bridge-ingest"


@dataclass(frozen=True)
class Sample:
    """One poll of ``/api/meters``: wall time, each meter's received count, the worker's CPU seconds."""

    wall: float
    received: dict[str, int]
    cpu_s: float

    @property
    def total(self) -> int:
        """Readings received, all meters."""
        return sum(self.received.values())


def _poll(http_port: int, worker: int) -> Sample:
    with urllib.request.urlopen(f"http://{LOOPBACK}:{http_port}/api/meters", timeout=10) as response:
        meters = json.loads(response.read())["meters"]
    return Sample(time.time(), {m: int(c["received"]) for m, c in meters.items()}, _cpu_s(worker))


def _drain(bridge: Proc, total: int, timeout_s: float) -> list[Sample]:
    """Poll until every reading is received (bounded); the samples from the last one at zero."""
    worker = children(bridge.popen.pid)[0]
    samples: list[Sample] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        sample = _poll(bridge.port or 0, worker)
        if sample.total == 0:
            samples = [sample]
        else:
            samples.append(sample)
        if sample.total >= total:
            return samples
        time.sleep(POLL_S)  # the benchmark's sampling period: nothing to wait on but the clock
    got = samples[-1].total if samples else 0
    raise TimeoutError(f"the bridge received {got} of {total} readings within {timeout_s} s")


def _close_time(samples: list[Sample], meter: str, seq: int) -> float | None:
    """When ``meter``'s received count reached ``seq``, interpolated between the polls around it."""
    counts = [s.received.get(meter, 0) for s in samples]
    at = bisect.bisect_left(counts, seq)
    if at >= len(samples):
        return None
    if at == 0:
        return samples[0].wall
    before, after = samples[at - 1], samples[at]
    share = (seq - counts[at - 1]) / max(1, counts[at] - counts[at - 1])
    return before.wall + share * (after.wall - before.wall)


def _windows(seconds: int, interval: int) -> list[int]:
    """Window ends (epoch s) of the windows the backlog completes: a window is final once the meter's stream has
    reached its end (grace 0), so the window holding the last second is not."""
    last = START_TS + seconds  # the meter's stream reaches here
    first_end = (START_TS // interval + 1) * interval
    return list(range(first_end, last + 1, interval))


def _sse_figures(clients: list[Client], samples: list[Sample], seconds: int, interval: int) -> str:
    expected = _windows(seconds, interval)
    complete, latencies, errors = 0, [], 0
    for client in clients:
        meter = client.path.split("household=")[1].split("&")[0]
        if client.error is not None:
            errors += 1
        got = dict(zip(client.ids, client.arrivals, strict=True))
        if all(end in got for end in expected) and len(client.ids) == len(set(client.ids)):
            complete += 1
        for end in expected:
            closed = _close_time(samples, meter, end - START_TS)  # seq n is second START_TS + n - 1
            if end in got and closed is not None:
                latencies.append(got[end] - closed)
    ordered = sorted(latencies) or [float("nan")]
    p50 = ordered[len(ordered) // 2]
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (
        f"SSE: {len(clients)} clients, {complete} got every one of their {len(expected)} windows, {errors} errors;"
        f" latency after the window became final: p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms,"
        f" max {ordered[-1] * 1000:.0f} ms ({len(latencies)} windows)"
    )


def _store_check(data_dir: Path, meters: int, seconds: int) -> str:
    with sqlite3.connect(str(data_dir / FILE_NAME)) as conn:
        rows, distinct = conn.execute("SELECT COUNT(*), COUNT(DISTINCT meter || '/' || seq) FROM readings").fetchone()
    expected = meters * seconds
    verdict = "ok" if rows == distinct == expected else "MISMATCH"
    return f"store: {rows:,} rows, {distinct:,} distinct (meter, seq), {expected:,} expected: {verdict}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--meters", type=int, default=200)
    parser.add_argument("--readings", type=int, default=100_000, help="messages queued, one reading each")
    parser.add_argument("--clients", type=int, default=1000, help="SSE clients during the drain")
    parser.add_argument("--interval", type=int, default=60, help="the SSE clients' window (s)")
    parser.add_argument("--publishers", type=int, default=32, help="mosquitto_pub processes at a time")
    parser.add_argument("--py-spy", metavar="FILE", help="py-spy's collapsed stacks of the worker during the drain")
    args = parser.parse_args()
    if missing := mosquitto_missing():
        parser.error(missing)
    seconds = args.readings // args.meters
    readings = seconds * args.meters
    payloads = fleet_payloads(args.meters, seconds)
    meters = list(payloads)
    messages = single_messages(payloads)
    work = Path(tempfile.mkdtemp(prefix="bench-bridge-ingest-"))
    lines = ["max_inflight_messages 100", f"max_queued_messages {readings + 10_000}", "persistence true"]
    lines.append("autosave_interval 0")  # saved on exit only
    env = {"FLEET_HOUSEHOLDS": ",".join(meters), "FLEET_SPEED": "1", "FLEET_LOG_LEVEL": "WARNING"}
    print(f"{readings:,} readings ({args.meters} meters x {seconds} s), {args.clients} SSE clients; work {work}")
    print(f"load average before: {os.getloadavg()}")
    broker = start_broker("mosquitto", work / "broker", meters=meters, mosquitto_lines=lines)
    port = broker.port or 0
    with running(broker):
        bridge = start_bridge(port, work / "bridge", env)  # its persistent session, subscribed
        bridge.stop()
        register_session(port, SUB_ID)
        published = publish(port, messages, work / "pub", args.publishers)
        print(f"published {len(messages):,} messages in {published:.1f} s (twice queued: bridge and mosquitto_sub)")
    broker.stop()
    bridge = start_bridge(port, work / "bridge", env, wait_mqtt=False)  # the broker is away: nothing drains yet
    with running(bridge):
        query = f"interval={args.interval}&start_index=0&pace=none"  # from the backlog's first second (midnight)
        paths = [f"/stream_data?household={meters[i % len(meters)]}&{query}" for i in range(args.clients)]
        load = ClientLoad(bridge.port or 0, paths, batch=200, read_timeout_s=300.0)
        load.start()
        if not load.wait(lambda clients: all(c.status is not None or c.error for c in clients), 60.0):
            raise TimeoutError("the SSE clients did not all connect within 60 s")
        spy = None
        if args.py_spy:  # samples the worker from before the broker is back until the drain is done
            beside = Path(sys.executable).with_name("py-spy")  # installed into this venv, or on PATH
            argv = [str(beside) if beside.exists() else "py-spy", "record", "--pid", str(children(bridge.popen.pid)[0])]
            argv += ["--rate", "250", "--nonblocking"]
            argv += ["--format", "raw", "--output", args.py_spy]
            spy = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        broker = start_broker("mosquitto", work / "broker", meters=meters, mosquitto_lines=lines, port=port)
        with running(broker):
            samples = _drain(bridge, readings, timeout_s=max(120.0, readings / 1000))
            if spy is not None:
                spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
                spy.wait(timeout=60)
            expected = len(_windows(seconds, args.interval))
            load.wait(lambda clients: all(len(c.ids) >= expected or c.error for c in clients), 30.0)
            load.stop()
            bridge.stop()
            baseline = drain_mosquitto_sub("mosquitto_sub (C)", port, SUB_ID, len(messages), readings)
    # The steady drain: from the first poll that saw readings to the last that had not seen them all (both inside the
    # drain, so neither the reconnect nor the idle end counts); the whole span if the drain was too short for that.
    inside = [s for s in samples if 0 < s.total < readings]
    first, last = (inside[0], inside[-1]) if len(inside) >= 2 else (samples[0], samples[-1])
    rate = (last.total - first.total) / (last.wall - first.wall)
    cpu_us = (last.cpu_s - first.cpu_s) / max(1, last.total - first.total) * 1e6
    print(f"load average after: {os.getloadavg()}")
    print(
        f"bridge (python -m bridge): {rate:,.0f} readings/s accepted ({last.total - first.total:,} between polls"
        f" {last.wall - first.wall:.2f} s apart), worker CPU {cpu_us:.1f} us/reading"
        f" (one core at that cost: {1e6 / cpu_us:,.0f}/s)"
    )
    print(f"mosquitto_sub: {baseline.rate():,.0f} readings/s (CPU {baseline.cpu_s or 0:.2f} s)")
    print(f"ratios: bridge / mosquitto_sub {rate / baseline.rate():.2f}x, bridge / target {rate / TARGET_PER_S:.2f}x")
    print(_sse_figures(load.clients, samples, seconds, args.interval))
    print(_store_check(work / "bridge" / "data", args.meters, seconds))


if __name__ == "__main__":
    main()
