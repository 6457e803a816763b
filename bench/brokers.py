"""Brokers side by side: the embedded amqtt and Mosquitto carrying the same fleets; where amqtt stops being enough.

For each broker and fleet size: a fresh broker on a free loopback port (authenticated, as ``make up`` runs it), a
subscriber (Mosquitto's C client ``mosquitto_sub``, QoS 1, logged in as ``observer``) on the meters' reading topics,
and ``python -m simulator run --fleet N --speed 1`` (classic profile: N readings/s offered). Once every meter is
connected (the simulator logs it), for ``--seconds``: readings delivered to the subscriber per second (batches counted
by their readings) against the N offered, and the broker's CPU (``/proc/<pid>/stat``, seconds per wall second). The
classic three households are the first row (3 readings/s). Baseline in the same run: Mosquitto on the same fleet.

    python -m bench.brokers [--meters 3,1000,2000,4000] [--seconds 20]
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench.publish import CONNECTED, _cpu_s, _wait_for
from bench.rates import OfferedRate
from simulator.meters.fleet import fleet_specs
from tests.support.procs import LOOPBACK, Proc, children, clean_env, login, python_module, start, start_broker

BROKERS = ("amqtt", "mosquitto")
MOSQUITTO_LINES = ("max_connections -1",)
CONNECT_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Row(OfferedRate):
    """One broker carrying one fleet."""

    broker: str
    meters: int
    connect_s: float
    span_s: float
    delivered: int
    broker_cpu_s: float


class Counter:
    """Counts the readings ``mosquitto_sub -v`` prints (a batch line counts as its readings)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.readings = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:  # ends when the subscriber is stopped
            count = line.count(b'"seq"')
            with self._lock:
                self.readings += count

    def value(self) -> int:
        """Readings so far."""
        with self._lock:
            return self.readings


def run(kind: str, meters: int, seconds: float, work: Path) -> Row:
    """One broker and one fleet."""
    logs = work / f"{kind}-{meters}"
    households = ["A", "B", "C"][: min(meters, 3)]
    fleet = None if meters <= 3 else meters
    ids = [spec.meter_id for spec in fleet_specs(households, fleet)]
    broker = start_broker(kind, logs, meters=ids, mosquitto_lines=MOSQUITTO_LINES)
    auth = login("observer")
    sub_argv = ["mosquitto_sub", "-h", LOOPBACK, "-p", str(broker.port), "-q", "1", "-v"]
    sub_argv += ["-u", auth["username"], "-P", auth["password"], "-t", "meters/+/reading", "-t", "meters/+/readings"]
    sub = subprocess.Popen(sub_argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    counter = Counter(sub)
    argv = ["simulator", "run", "--broker", f"mqtt://{LOOPBACK}:{broker.port}", "--speed", "1", "--seed", "1"]
    argv += ["--profile", "classic", "--households", ",".join(households)]
    if fleet is not None:
        argv += ["--fleet", str(fleet)]
    sim: Proc = start("simulator", python_module(*argv), logs, env=clean_env({"FLEET_DATA_DIR": str(logs / "data")}))
    try:
        connect_s = 0.0
        if fleet is not None:
            connect_s = float(_wait_for(sim, CONNECTED, CONNECT_TIMEOUT_S).group(2))
        with contextlib.suppress(subprocess.TimeoutExpired):
            sim.popen.wait(timeout=3.0)  # settle: the first seconds after the last connect
        broker_pids = [broker.popen.pid, *children(broker.popen.pid)]
        cpu0 = sum(_cpu_s(pid) for pid in broker_pids)
        got0, t0 = counter.value(), time.monotonic()
        with contextlib.suppress(subprocess.TimeoutExpired):
            sim.popen.wait(timeout=seconds)  # the measured span (the simulator runs on)
        got, span = counter.value() - got0, time.monotonic() - t0
        cpu = sum(_cpu_s(pid) for pid in broker_pids) - cpu0
        if not sim.alive():
            raise RuntimeError(f"simulator exited:\n{sim.log()[-3000:]}")
    finally:
        sim.stop(signal.SIGTERM, timeout=30)
        sub.terminate()
        sub.wait(timeout=10)
        broker.stop()
    return Row(kind, meters, connect_s, span, got, cpu)


def main() -> None:
    """Run every broker on every fleet size; print a table and amqtt's share of Mosquitto's throughput."""
    parser = argparse.ArgumentParser(prog="python -m bench.brokers", description=__doc__)
    parser.add_argument("--meters", default="3,1000,2000,4000", help="fleet sizes, comma-separated (3 = A, B, C)")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured span per run")
    args = parser.parse_args()
    sizes = [int(part) for part in args.meters.split(",")]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-brokers-") as tmp:
        for meters in sizes:
            for kind in BROKERS:
                row = run(kind, meters, args.seconds, Path(tmp))
                rows.append(row)
                print(
                    f"{kind:9} {meters:5d} meters: connected in {row.connect_s:5.1f} s, delivered {row.per_s:8.1f}"
                    f" readings/s ({row.share:6.1%} of offered), broker CPU {row.broker_cpu_s / row.span_s:5.1%}"
                    " of a core",
                    flush=True,
                )
    print("\nmeters | amqtt readings/s | amqtt CPU | Mosquitto readings/s | Mosquitto CPU | amqtt / Mosquitto")
    for meters in sizes:
        a, m = (next(r for r in rows if r.broker == k and r.meters == meters) for k in BROKERS)
        print(
            f"{meters} | {a.per_s:.1f} ({a.share:.1%}) | {a.broker_cpu_s / a.span_s:.0%} | {m.per_s:.1f}"
            f" ({m.share:.1%}) | {m.broker_cpu_s / m.span_s:.0%} | {a.per_s / m.per_s:.2f}x"
        )


if __name__ == "__main__":
    main()
