"""Cluster side by side: the same fleet through a 3-node NATS JetStream cluster and through one Mosquitto broker.

For each setup (Mosquitto first, the baseline, then ``nats-3``): the broker(s) on free loopback ports
(authenticated, as ``make up`` and ``make cluster`` run them); two bridge shards (``FLEET_SHARD=0/2`` and ``1/2``),
started one after the other (on NATS bridge-0 on node 1 and bridge-1 on node 2, each waited for until it holds a
QoS 1 consumer per owned meter, wherever it ended up); an observer (Mosquitto's C client ``mosquitto_sub``, QoS 0,
logged in as ``observer``; on NATS on node 1) on the meters' reading topics; two ``python -m simulator run --speed 1
--profile classic`` processes, half the fleet each (``--fleet N/2`` and ``--fleet N/2 --fleet-offset N/2``; on NATS
with every node's URL: each meter starts on its own node, by the CRC-32 of its id, and fails over in its own order).

Once every meter is connected (both simulators log it), every meter has been heard by its bridge and 3 s have
passed, for ``--seconds``: readings delivered end to end (the increase of ``received`` in both bridges'
``/api/meters``) per second against the N offered; the lateness of each live reading at the observer (arrival minus
its schedule: the end of its second plus the meter's jitter offset; at speed 1 the simulator's clock is the wall
clock); CPU seconds per wall second (``/proc/<pid>/stat``) of each broker node, of the two simulators and of the two
bridges (gunicorn: master and worker).

On NATS (nats-server 2.9) a bridge shard's per-meter filters are as many replicated JetStream consumers, created one
at a time while the node reads nothing else from that bridge (its SUBACKs keep its session watchdog quiet), and an
MQTT session's QoS 1 subscriptions may together hold at most 65,535 unacknowledged messages (``nats-config`` sets each
subscription's ``max_ack_pending`` from the fleet's size so that they fit). Every wait before the span is bounded
(``--ready-timeout``) and gives up after ``--stall`` seconds without progress; the run then goes on, measures what
flows, and says what was missing.

NATS only, after the span: failover. Node 3 is killed (SIGKILL); for each meter that was on it, the time until the
observer (node 1) sees one of its readings again (its first arrival later than the kill + 0.2 s), within
``--failover-bound``; and where the moved meters went (nodes 1 and 2).

    python -m bench.cluster [--meters 2000] [--seconds 30] [--ready-timeout 900] [--stall 90] [--failover-bound 90]
                            [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from bench.publish import CONNECTED, _cpu_s, _wait_for
from bench.rates import OfferedRate
from config.credentials import meter_client_id
from config.errors import PayloadError
from config.shard import Shard
from config.wire import parse_ts
from simulator.live.schedule import jitter_offset
from tests.support.fleetmeters import fleet_ids
from tests.support.nats import NatsCluster, start_nats_cluster
from tests.support.procs import (
    LOOPBACK,
    Proc,
    children,
    clean_env,
    free_port,
    http_get,
    login,
    python_module,
    start,
    start_broker,
)

SETUPS = ("mosquitto", "nats-3")
SHARDS = 2
MOSQUITTO_LINES = ("max_connections -1",)
BRIDGE_TIMEOUT_S = 60.0  # HTTP up and "mqtt": "connected"
SETTLE_S = 3.0
KILLED_NODE = 3
KILL_GRACE_S = 0.2  # arrivals within this of the kill may still be in flight from before it
TICK_S = 0.5
NOTE_EVERY_S = 30.0  # progress lines during long waits
POLL_S = 1.0
TS_KEY = b'"ts": "'  # config.wire.encode_reading writes ``"ts": "YYYY-MM-DDTHH:MM:SSZ"``
TS_LEN = 20


@dataclass(frozen=True)
class Options:
    """What the command line sets."""

    seconds: float
    ready_timeout_s: float  # bound of each wait before the span
    stall_s: float  # a wait before the span gives up after this long without progress
    failover_bound_s: float


class Observer:
    """Reads ``mosquitto_sub -v`` in a thread: counts readings (a batch line counts as its readings), keeps each live
    reading's lateness, and, once told to watch, each watched meter's first arrival after a given time."""

    def __init__(self, proc: subprocess.Popen[bytes], ids: Sequence[str]) -> None:
        self.proc = proc
        self.offsets = {meter: jitter_offset(meter) for meter in ids}
        self.readings = 0
        self.lateness: list[float] = []  # seconds, in arrival order
        self.back: dict[str, float] = {}  # watched meter -> first arrival (wall time) after ``_after``
        self.all_back = threading.Event()
        self._watched: frozenset[str] = frozenset()
        self._after = float("inf")
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:  # ends when the subscriber is stopped
            now = time.time()
            topic, _, payload = line.partition(b" ")
            parts = topic.split(b"/")
            if len(parts) != 3:
                continue
            meter, kind = parts[1].decode(errors="replace"), parts[2]
            late = self._late(meter, payload, now) if kind == b"reading" else None
            with self._lock:
                self.readings += 1 if kind == b"reading" else payload.count(b'"seq"')
                if late is not None:
                    self.lateness.append(late)
                if meter in self._watched and now > self._after and meter not in self.back:
                    self.back[meter] = now
                    if len(self.back) == len(self._watched):
                        self.all_back.set()

    def _late(self, meter: str, payload: bytes, now: float) -> float | None:
        """Arrival minus schedule (the end of the reading's second plus the meter's offset), None if unreadable."""
        at = payload.find(TS_KEY)
        if at < 0:
            return None
        try:
            ts = parse_ts(payload[at + len(TS_KEY) : at + len(TS_KEY) + TS_LEN].decode())
        except (PayloadError, UnicodeDecodeError):
            return None
        offset = self.offsets.get(meter)
        return now - (ts + 1 + (jitter_offset(meter) if offset is None else offset))

    def mark(self) -> tuple[int, int]:
        """(readings so far, lateness samples so far)."""
        with self._lock:
            return self.readings, len(self.lateness)

    def samples(self, start: int, end: int) -> list[float]:
        """The lateness samples between two marks."""
        with self._lock:
            return self.lateness[start:end]

    def arrivals(self) -> dict[str, float]:
        """Each watched meter heard again so far: its first arrival (wall time)."""
        with self._lock:
            return dict(self.back)

    def watch(self, meters: Sequence[str], after: float) -> None:
        """From now on, note each of ``meters``' first arrival later than ``after`` (wall time)."""
        with self._lock:
            self.back = {}
            self._watched, self._after = frozenset(meters), after
            if not self._watched:
                self.all_back.set()

    def stop(self) -> None:
        """Stop the subscriber; its thread ends with its output."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


@dataclass(frozen=True)
class Failover:
    """Node 3 killed: how long its meters took to be heard again, and where they went."""

    moved: int
    back_s: list[float]
    on_node: dict[int, int]
    bound_s: float

    @property
    def never(self) -> int:
        """Meters not heard again within the bound."""
        return self.moved - len(self.back_s)


@dataclass(frozen=True)
class Row(OfferedRate):
    """One setup carrying the fleet."""

    setup: str
    meters: int
    subscribed_s: float | None  # until both bridges held their subscriptions (None: nothing to wait for)
    connect_s: float  # the slower simulator's "all meters connected"
    heard_s: float  # from then until every meter was heard by its bridge
    notes: tuple[str, ...]  # waits that gave up: what was still missing
    span_s: float
    delivered: int
    observed: int
    lateness: list[float]
    broker_cpu: list[float]  # per node, seconds per wall second
    sims_cpu: float
    bridges_cpu: float
    failover: Failover | None = None


def _pct(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` (nearest rank), NaN if none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _check_alive(procs: Sequence[Proc]) -> None:
    for proc in procs:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.log()[-3000:]}")


def _pause(seconds: float, procs: Sequence[Proc]) -> None:
    """Let ``seconds`` pass (bounded ticks), failing at once if one of ``procs`` exits."""
    tick, deadline = threading.Event(), time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        _check_alive(procs)
        tick.wait(min(TICK_S, left))


@dataclass(frozen=True)
class Waited:
    """How a wait before the span ended: its seconds, and what was missing if it gave up (None: done)."""

    seconds: float
    missing: str | None = None


def _poll(state: Callable[[], tuple[bool, str]], options: Options, procs: Sequence[Proc]) -> Waited:
    """Poll ``state`` (done, and a note of the progress) every second until done. The note is printed every
    ``NOTE_EVERY_S``; the wait gives up (a warning, the run goes on) after ``options.ready_timeout_s``, or after
    ``options.stall_s`` with the same note; RuntimeError if one of ``procs`` exits. An OSError or a ValueError (a
    bridge or a node busy, a truncated answer) counts as not yet."""
    tick, t0 = threading.Event(), time.monotonic()
    next_note, note, changed = t0 + NOTE_EVERY_S, "", t0
    while (now := time.monotonic()) - t0 < options.ready_timeout_s and now - changed < options.stall_s:
        with contextlib.suppress(OSError, ValueError):
            done, seen = state()
            if done:
                return Waited(now - t0)
            note, changed = seen, now if seen != note else changed
        _check_alive(procs)
        if now >= next_note:
            print(f"  ... {now - t0:.0f} s: {note}", flush=True)
            next_note += NOTE_EVERY_S
        tick.wait(POLL_S)
    why = "no progress" if now - changed >= options.stall_s else "time is up"
    print(f"  WARNING: gave up waiting after {now - t0:.0f} s ({why}): {note}", flush=True)
    return Waited(now - t0, note)


def _cpu(pids: Sequence[int]) -> float:
    return sum(_cpu_s(pid) for pid in pids)


def _meter_rows(bridge: Proc) -> dict[str, dict[str, object]]:
    """The bridge's ``/api/meters``: per meter its counters."""
    status, body = http_get(bridge.port or 0, "/api/meters")
    if status != 200:
        raise OSError(f"GET /api/meters of {bridge.name}: {status}")
    rows: dict[str, dict[str, object]] = json.loads(body)["meters"]
    return rows


def _received(row: dict[str, object]) -> int:
    value = row.get("received")
    return value if isinstance(value, int) else 0


def _heard(bridges: Sequence[Proc]) -> int:
    """Meters heard at least once, over both bridges."""
    return sum(sum(1 for row in _meter_rows(bridge).values() if _received(row) > 0) for bridge in bridges)


def start_bridge(stack: contextlib.ExitStack, ids: Sequence[str], index: int, url: str, work: Path) -> Proc:
    """Bridge shard ``index`` of 2 on broker list ``url``, serving HTTP and connected."""
    env = {
        "FLEET_SPEED": "1",
        "FLEET_HOUSEHOLDS": ",".join(ids),
        "FLEET_SHARD": str(Shard(index, SHARDS)),
        "FLEET_BRIDGE_ID": f"bridge-{index}",  # its MQTT client id
        "FLEET_HA_DISCOVERY": "false",
        "FLEET_DATA_DIR": str(work / f"bridge-{index}" / "data"),
    }
    port = free_port()
    argv = python_module("bridge", "--broker", url, "--host", LOOPBACK, "--port", str(port))
    bridge = start(f"bridge-{index}", argv, work / f"bridge-{index}", env=clean_env(env), port=port)
    stack.callback(bridge.stop, signal.SIGTERM, 30)
    bridge.wait_port(port, timeout=BRIDGE_TIMEOUT_S)
    bridge.wait_mqtt(port, timeout=BRIDGE_TIMEOUT_S)
    return bridge


def bridge_node(cluster: NatsCluster, bridge: Proc) -> int | None:
    """The node (1-based) the bridge says it is on (``/healthz`` ``broker``), None if not one of the cluster's."""
    _, body = http_get(bridge.port or 0, "/healthz")  # 503 (degraded) still says where it is
    url = json.loads(body).get("broker")
    return next((k for k in range(1, len(cluster.nodes) + 1) if cluster.url(k) == url), None)


def wait_subscribed(cluster: NatsCluster, bridge: Proc, ids: Sequence[str], options: Options) -> Waited:
    """Until the bridge holds, on the node it is on, a QoS 1 consumer per meter it owns (a reading published before
    its consumer exists never reaches a new session). The bridge's session watchdog may move it to another node
    meanwhile: it hears nothing, not even its probe, while the node creates the consumers."""
    index = int(bridge.name.rsplit("-", 1)[1])
    wanted = {f"meters.{meter}.*" for meter in Shard(index, SHARDS).owned(ids)}

    def state() -> tuple[bool, str]:
        node = bridge_node(cluster, bridge)
        found = [] if node is None else cluster.subscriptions(node, bridge.name)
        deliveries = sum(subject.startswith("$MQTT.sub.") for subject in found)
        held = len(wanted & set(found))
        done = held == len(wanted) and deliveries >= len(wanted)
        return done, f"{bridge.name} on node {node}: {held} of {len(wanted)} subscriptions, {deliveries} consumers"

    return _poll(state, options, [*cluster.nodes, bridge])


def start_observer(stack: contextlib.ExitStack, port: int, ids: Sequence[str]) -> Observer:
    """``mosquitto_sub`` (QoS 0, the observer's login) on the reading topics of the broker on ``port``."""
    auth = login("observer")
    argv = ["mosquitto_sub", "-h", LOOPBACK, "-p", str(port), "-q", "0", "-v"]
    argv += ["-u", auth["username"], "-P", auth["password"], "-t", "meters/+/reading", "-t", "meters/+/readings"]
    sub = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    observer = Observer(sub, ids)
    stack.callback(observer.stop)
    return observer


@dataclass(frozen=True)
class Fleet:
    """The two simulator processes, and the slower one's time until all its meters were connected."""

    sims: list[Proc]
    connect_s: float


def start_simulators(stack: contextlib.ExitStack, meters: int, urls: str, work: Path, timeout_s: float) -> Fleet:
    """Two simulator processes, half the fleet each, on broker list ``urls``, returned once every meter is connected,
    with the slower one's connect time."""
    half = meters // 2
    sims = []
    for index, (size, offset) in enumerate(((half, 0), (meters - half, half))):
        argv = ["simulator", "run", "--broker", urls, "--speed", "1", "--seed", "1", "--profile", "classic"]
        argv += ["--households", "A,B,C", "--fleet", str(size), "--fleet-offset", str(offset)]
        logs = work / f"simulator-{index}"
        sim = start(f"simulator-{index}", python_module(*argv), logs, env=clean_env({"FLEET_DATA_DIR": str(logs)}))
        stack.callback(sim.stop, signal.SIGTERM, 30)
        sims.append(sim)
    connect_s = max(float(_wait_for(sim, CONNECTED, timeout_s).group(2)) for sim in sims)
    return Fleet(sims, connect_s)


@dataclass(frozen=True)
class Setup:
    """Everything running for one setup."""

    name: str
    meters: int
    brokers: list[Proc]
    bridges: list[Proc]
    fleet: Fleet
    observer: Observer
    subscribed: Waited | None  # the bridges' subscriptions (None: nothing to wait for)

    def subscribed_missing(self) -> str | None:
        """What the bridges' subscriptions still missed when the wait gave up, if it did."""
        return None if self.subscribed is None else self.subscribed.missing

    def procs(self) -> list[Proc]:
        """Every process that must stay up."""
        return [*self.brokers, *self.bridges, *self.fleet.sims]

    def pid_groups(self) -> list[list[list[int]]]:
        """Processes whose CPU is measured: each broker node, each simulator, each bridge (gunicorn: master and
        workers)."""
        return [
            [[broker.popen.pid] for broker in self.brokers],
            [[sim.popen.pid] for sim in self.fleet.sims],
            [[bridge.popen.pid, *children(bridge.popen.pid)] for bridge in self.bridges],
        ]

    def received(self) -> int:
        """Readings received by both bridges so far."""
        return sum(sum(map(_received, _meter_rows(bridge).values())) for bridge in self.bridges)


def wait_heard(setup: Setup, options: Options) -> Waited:
    """Until every meter has been heard by its bridge."""

    def state() -> tuple[bool, str]:
        heard = _heard(setup.bridges)
        return heard == setup.meters, f"{setup.name}: {heard} of {setup.meters} meters heard by the bridges"

    return _poll(state, options, setup.procs())


@dataclass(frozen=True)
class Snapshot:
    """The counters at one moment."""

    at: float
    received: int
    observed: int
    late_index: int
    cpu: list[list[float]]  # CPU seconds, in ``Setup.pid_groups``' shape (summed per process set)


def _snapshot(setup: Setup, groups: list[list[list[int]]]) -> Snapshot:
    at, (observed, late_index) = time.monotonic(), setup.observer.mark()
    cpu = [[_cpu(pids) for pids in group] for group in groups]
    return Snapshot(at, setup.received(), observed, late_index, cpu)


def measure(setup: Setup, options: Options) -> Row:
    """Every meter heard, settle, then the measured span: delivered, observed, lateness and CPU."""
    heard = wait_heard(setup, options)
    _pause(SETTLE_S, setup.procs())
    groups = setup.pid_groups()
    first = _snapshot(setup, groups)
    _pause(options.seconds, setup.procs())
    last = _snapshot(setup, groups)
    span = last.at - first.at
    cpu = [[(b - a) / span for a, b in zip(ga, gb, strict=True)] for ga, gb in zip(first.cpu, last.cpu, strict=True)]
    return Row(
        setup.name,
        setup.meters,
        None if setup.subscribed is None else setup.subscribed.seconds,
        setup.fleet.connect_s,
        heard.seconds,
        tuple(note for note in (setup.subscribed_missing(), heard.missing) if note is not None),
        span,
        last.received - first.received,
        last.observed - first.observed,
        setup.observer.samples(first.late_index, last.late_index),
        cpu[0],
        sum(cpu[1]),
        sum(cpu[2]),
    )


def failover(cluster: NatsCluster, observer: Observer, ids: Sequence[str], bound_s: float) -> Failover:
    """Kill node 3; how long each of its meters took to be heard again (through node 1), and where they went."""
    by_client = {meter_client_id(meter): meter for meter in ids}
    moved = sorted(by_client[client] for client in cluster.clients(KILLED_NODE) if client in by_client)
    killed_at = time.time()
    cluster.nodes[KILLED_NODE - 1].stop(signal.SIGKILL)
    observer.watch(moved, killed_at + KILL_GRACE_S)
    observer.all_back.wait(bound_s)
    back = sorted(at - killed_at for at in observer.arrivals().values())
    clients = {meter_client_id(meter) for meter in moved}
    on_node = {node: len(cluster.clients(node) & clients) for node in (1, 2)}
    return Failover(len(moved), back, on_node, bound_s)


def run_mosquitto(ids: Sequence[str], options: Options, work: Path) -> Row:
    """The fleet through one Mosquitto broker."""
    with contextlib.ExitStack() as stack:
        broker = start_broker("mosquitto", work / "broker", meters=ids, mosquitto_lines=MOSQUITTO_LINES)
        stack.callback(broker.stop)
        url = f"mqtt://{LOOPBACK}:{broker.port}"
        bridges = [start_bridge(stack, ids, index, url, work) for index in range(SHARDS)]
        observer = start_observer(stack, broker.port or 0, ids)
        fleet = start_simulators(stack, len(ids), url, work, options.ready_timeout_s)
        return measure(Setup("mosquitto", len(ids), [broker], bridges, fleet, observer, None), options)


def run_nats(ids: Sequence[str], options: Options, work: Path) -> Row:
    """The fleet through a 3-node NATS JetStream cluster, then node 3 killed."""
    with contextlib.ExitStack() as stack:
        cluster = start_nats_cluster(work / "nats", meters=ids)
        stack.callback(cluster.stop)
        bridges, waits = [], []
        for index in range(SHARDS):  # one after the other: the cluster creates one bridge's consumers at a time
            bridges.append(start_bridge(stack, ids, index, cluster.urls(first=index + 1), work))
            waits.append(wait_subscribed(cluster, bridges[-1], ids, options))
        missing = "; ".join(wait.missing for wait in waits if wait.missing is not None) or None
        subscribed = Waited(sum(wait.seconds for wait in waits), missing)
        nodes = [bridge_node(cluster, bridge) for bridge in bridges]
        print(f"  nats-3: bridges subscribed after {subscribed.seconds:.0f} s, on nodes {nodes}", flush=True)
        observer = start_observer(stack, cluster.mqtt_port(1), ids)  # not on node 3: it outlives the kill
        fleet = start_simulators(stack, len(ids), cluster.urls(), work, options.ready_timeout_s)
        setup = Setup("nats-3", len(ids), list(cluster.nodes), bridges, fleet, observer, subscribed)
        row = measure(setup, options)
        return replace(row, failover=failover(cluster, observer, ids, options.failover_bound_s))


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def _cores(load: float) -> str:
    return f"{load:.0%}"


def describe(row: Row) -> str:
    """One line: what the setup carried."""
    late = row.lateness
    subscribed = "" if row.subscribed_s is None else f"bridges subscribed in {row.subscribed_s:.0f} s, "
    return (
        f"{row.setup:9} {row.meters} meters: {subscribed}meters connected in "
        f"{row.connect_s:.1f} s, all heard {row.heard_s:.0f} s later; over {row.span_s:.1f} s delivered "
        f"{row.per_s:.1f} readings/s ({row.share:.1%} of offered), observer saw {row.observed / row.span_s:.1f}/s; "
        f"lateness p50 {_ms(_pct(late, 0.5))} ms, p95 {_ms(_pct(late, 0.95))} ms, p99 {_ms(_pct(late, 0.99))} ms "
        f"(n={len(late)}); CPU of a core: broker {' / '.join(map(_cores, row.broker_cpu))}, simulators "
        f"{_cores(row.sims_cpu)}, bridges {_cores(row.bridges_cpu)}"
    )


def describe_failover(found: Failover) -> str:
    """One line: node 3 killed, its meters heard again."""
    back = found.back_s
    spread = ", ".join(f"node {node}: {count}" for node, count in found.on_node.items())
    times = "none"
    if back:
        times = f"min {back[0]:.1f} s, p50 {_pct(back, 0.5):.1f} s, p95 {_pct(back, 0.95):.1f} s, max {back[-1]:.1f} s"
    return (
        f"nats-3    failover: node {KILLED_NODE} killed with {found.moved} meters on it; heard again: {len(back)} "
        f"({times}); never within {found.bound_s:.0f} s: {found.never}; the moved meters now on {spread}"
    )


def table(rows: Sequence[Row]) -> list[str]:
    """The markdown table of every setup."""
    lines = [
        "| setup | meters | delivered readings/s (share of N offered) | e2e lateness p50 / p95 | CPU per broker node "
        "| simulators CPU | bridges CPU |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        late = f"{_ms(_pct(row.lateness, 0.5))} / {_ms(_pct(row.lateness, 0.95))} ms"
        nodes = " / ".join(map(_cores, row.broker_cpu))
        lines.append(
            f"| {row.setup} | {row.meters} | {row.per_s:.1f} ({row.share:.1%}) | {late} | {nodes} "
            f"| {_cores(row.sims_cpu)} | {_cores(row.bridges_cpu)} |"
        )
    return lines


def main() -> None:
    """Mosquitto, then the NATS cluster, on the same fleet; a line each, the failover, a table and the ratio."""
    parser = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__)
    parser.add_argument("--meters", type=int, default=2000, help="fleet size (at least 2: two simulator halves)")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured span per setup")
    parser.add_argument(
        "--ready-timeout", type=float, default=900.0, help="bound of each wait before the span (subscriptions, ...)"
    )
    parser.add_argument(
        "--stall", type=float, default=90.0, help="a wait before the span gives up after this long without progress"
    )
    parser.add_argument("--failover-bound", type=float, default=90.0, help="how long to wait for node 3's meters")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, data) afterwards")
    args = parser.parse_args()
    if args.meters < 2:
        parser.error("--meters: at least 2")
    print("$ " + shlex.join(["python", "-m", "bench.cluster", *sys.argv[1:]]), flush=True)
    options = Options(args.seconds, args.ready_timeout, args.stall, args.failover_bound)
    ids = fleet_ids(args.meters)
    work = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    print(f"logs in {work}", flush=True)
    rows: list[Row] = []
    for setup, run in zip(SETUPS, (run_mosquitto, run_nats), strict=True):
        rows.append(run(ids, options, work / setup))
        print(describe(rows[-1]), flush=True)
        for note in rows[-1].notes:
            print(f"{rows[-1].setup:9} WARNING, measured anyway: {note}", flush=True)
        if rows[-1].failover is not None:
            print(describe_failover(rows[-1].failover), flush=True)
    print()
    print("\n".join(table(rows)))
    for row in rows:
        if row.notes:
            print(f"\n{row.setup}: waits that gave up before the span: {'; '.join(row.notes)}")
    mosquitto, nats = rows
    print(f"\nnats-3 / mosquitto, delivered readings/s: {nats.per_s / mosquitto.per_s:.2f}x")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
