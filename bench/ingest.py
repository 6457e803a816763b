"""How many readings a second does the bridge's ingest take on one core (one Python process), fed by a C publisher?

A fleet of ``--meters`` meters x ``--seconds`` seconds of valid readings (consecutive seqs and seconds per meter) is
measured in two forms: one reading per message on ``meters/<id>/reading`` (what live meters send: the hard case) and
batches of up to ``MAX_BATCH`` readings on ``meters/<id>/readings`` (a meter's backlog). For each form, in one run:

- in process, no MQTT: ``Ingest.handle(topic, payload)`` in a loop over a fresh ``History`` with the store as the
  bridge configures it by default (SQLite, readings mode, 2-day rings): the Python processing limit;
- through MQTT, the bridge's own path: Mosquitto (authenticated, on a free loopback port, the production
  ``max_inflight_messages 100``) -> ``bridge.ingest.subscriber.Subscriber`` (``config.mqtt``; paho before 2026-12-06)
  -> ``Ingest`` -> ``History`` -> store;
- baseline: ``mosquitto_sub`` (C) draining the same messages from the same broker: the broker/transport limit;
- baseline: the same ``Subscriber`` with a handler that only counts: what the Python MQTT client costs alone.

Every consumer holds a persistent session (clean session off, QoS 1, like the bridge) that is registered first; then
``mosquitto_pub -l -q 1`` (one process per meter, as that meter's user; ``--publishers`` at a time, as each lingers
about 0.2 s at the end of its input) publishes every message while the consumers are away, so the broker queues them;
then each consumer connects alone and drains its queue. The publishers are done before a consumer starts: the rate is
the consumer's, measured from its first to its last arrival. CPU is the consuming process's (every thread: the
subscriber's network thread, ingest, the store's writer) from its start until the store has committed everything, per
reading.

    python -m bench.ingest [--meters 1000] [--seconds 60] [--publishers 32] [--profile 20] [--profile-mqtt 0]
                           [--forms single,batch] [--no-mqtt]

``--profile N`` prints the top N functions of a cProfile of the in-process loop (single form); ``--profile-mqtt N``
those of the subscriber's network thread (where the bridge's ingest runs) while it drains the single form once more.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import resource
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bridge.ingest.history import History
from bridge.ingest.messages import Ingest
from bridge.ingest.store import ReadingStore
from bridge.ingest.subscriber import Subscriber
from config.credentials import BRIDGE_USER, meter_client_id
from config.secret import load_or_create_secret
from config.settings import DEFAULT_HISTORY_S, DEFAULT_RETENTION_S, BrokerAddress
from config.topics import BATCH_SUBSCRIPTION, READING_SUBSCRIPTION, STATUS_SUBSCRIPTION, batch_topic, reading_topic
from config.wire import Reading, encode_batch, encode_reading, split_batches
from tests.support.procs import LOOPBACK, fleet_secret, login, mosquitto_missing, running, start_broker

START_TS = 1_748_736_000  # 2025-06-01T00:00:00Z
SUBSCRIPTIONS = (READING_SUBSCRIPTION, BATCH_SUBSCRIPTION, STATUS_SUBSCRIPTION)  # what the bridge subscribes to
TARGET_PER_S = 20_000

Message = tuple[str, bytes]


def fleet_payloads(meters: int, seconds: int, seed: int = 1) -> dict[str, list[bytes]]:
    """Encoded readings of each meter, seqs 1..``seconds`` for consecutive seconds from ``START_TS``."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[bytes]] = {}
    for index in range(meters):
        meter = f"m{index:05d}"
        ac = rng.uniform(0.0, 2500.0, seconds).round(1)
        geyser = np.where(rng.random(seconds) < 0.3, 2000.0, 0.0)
        overall = (ac + geyser + rng.uniform(100.0, 600.0, seconds)).round(1)
        start_kwh = rng.uniform(0.0, 5000.0, 3)
        energies = start_kwh + np.cumsum(np.stack([ac, geyser, overall], axis=1), axis=0) / 3.6e6
        out[meter] = [
            encode_reading(
                Reading(
                    meter,
                    second + 1,
                    START_TS + second,
                    float(ac[second]),
                    None if second % 997 == 996 else float(geyser[second]),  # now and then a channel without value
                    float(overall[second]),
                    *(float(e) for e in energies[second]),
                )
            )
            for second in range(seconds)
        ]
    return out


def single_messages(payloads: dict[str, list[bytes]]) -> list[Message]:
    """One message per reading, in live order: every meter's second, then the next second."""
    seconds = max(len(p) for p in payloads.values())
    return [(reading_topic(m), p[s]) for s in range(seconds) for m, p in payloads.items() if s < len(p)]


def batch_messages(payloads: dict[str, list[bytes]]) -> list[Message]:
    """Batch messages of each meter (up to ``MAX_BATCH`` readings each), meter after meter."""
    return [(batch_topic(m), encode_batch(chunk)) for m, p in payloads.items() for chunk in split_batches(p)]


@dataclass(frozen=True)
class Figure:
    """A consumer's run: messages and readings it took, first-to-last arrival (s), its CPU (s) until committed."""

    name: str
    messages: int
    readings: int
    seconds: float
    cpu_s: float | None

    def rate(self) -> float:
        """Readings per second."""
        return self.readings / self.seconds if self.seconds > 0 else float("inf")

    def line(self) -> str:
        """One line of the report."""
        cpu = "" if self.cpu_s is None else f", CPU {self.cpu_s / self.readings * 1e6:.1f} us/reading"
        return (
            f"  {self.name:<48} {self.rate():>9,.0f} readings/s ({self.messages:,} messages, "
            f"{self.readings:,} readings in {self.seconds:.2f} s{cpu})"
        )


def _fresh_history(work: Path) -> History:
    """History with the store as the bridge configures it by default (readings mode, default retention/rings)."""
    work.mkdir(parents=True, exist_ok=True)
    return History(DEFAULT_HISTORY_S, ReadingStore(work, DEFAULT_RETENTION_S))


def _closed(history: History, readings: int) -> None:
    store = history.store
    assert store is not None
    if not store.flush(timeout=120):
        raise TimeoutError("the store did not commit within 120 s")
    store.close()
    if store.written != readings or store.dropped:
        raise RuntimeError(f"store wrote {store.written} of {readings} readings ({store.dropped} dropped)")


def in_process(name: str, messages: Sequence[Message], readings: int, work: Path) -> Figure:
    """``Ingest.handle`` in a loop (no MQTT); wall time of the loop, CPU until the store has committed."""
    history = _fresh_history(work)
    ingest = Ingest(history)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for topic, payload in messages:
        ingest.handle(topic, payload)
    wall = time.perf_counter() - wall0
    _closed(history, readings)
    cpu = time.process_time() - cpu0
    _check(ingest, readings)
    return Figure(name, len(messages), readings, wall, cpu)


def profile(messages: Sequence[Message], work: Path, top: int) -> str:
    """cProfile of ``Ingest.handle`` in a loop (the calling thread only: not the store's writer), top ``top`` lines
    by own time and by cumulative time."""
    history = _fresh_history(work)
    ingest = Ingest(history)
    profiler = cProfile.Profile()
    profiler.enable()
    for topic, payload in messages:
        ingest.handle(topic, payload)
    profiler.disable()
    _closed(history, len(messages))
    return _profile_text(profiler, top)


def _check(ingest: Ingest, readings: int) -> None:
    counters = ingest.counters()
    if counters["accepted"] != readings or counters["rejected"]:
        raise RuntimeError(f"ingest did not accept every reading: {counters}")


class _TimedIngest(Ingest):
    """Ingest that notes the first and last arrival and says when ``expected`` messages have come (``work``: False
    for a handler that only counts)."""

    def __init__(self, history: History, expected: int, work: bool = True) -> None:
        super().__init__(history)
        self.expected = expected
        self.work = work
        self.count = 0
        self.first = 0.0
        self.last = 0.0
        self.done = threading.Event()
        self.profiler: cProfile.Profile | None = None  # enabled on the network thread at connect, off at the end

    def handle(self, topic: str, payload: bytes) -> bool:
        now = time.perf_counter()
        if self.count == 0:
            self.first = now
        result = super().handle(topic, payload) if self.work else True
        self.count += 1
        self.last = now
        if self.count >= self.expected:
            if self.profiler is not None:
                self.profiler.disable()
            self.done.set()
        return result


def _auth_args(user: str) -> list[str]:
    auth = login(user)
    return ["-u", auth["username"], "-P", auth["password"]]


def _sub_argv(port: int, client_id: str) -> list[str]:
    argv = ["mosquitto_sub", "-h", LOOPBACK, "-p", str(port), "-c", "-i", client_id, "-q", "1"]
    for topic in SUBSCRIPTIONS:
        argv += ["-t", topic]
    return argv + _auth_args(BRIDGE_USER)


def register_session(port: int, client_id: str) -> None:
    """Make a persistent session with the bridge's subscriptions, then leave (the broker queues for it)."""
    subprocess.run([*_sub_argv(port, client_id), "-E"], check=True, timeout=30, stdout=subprocess.DEVNULL)


def publish(port: int, messages: Sequence[Message], work: Path, parallel: int) -> float:
    """Publish ``messages`` with ``mosquitto_pub -l -q 1``: one process per topic (as its meter), ``parallel`` at a
    time; wall seconds."""
    by_topic: dict[str, list[bytes]] = {}
    for topic, payload in messages:
        by_topic.setdefault(topic, []).append(payload)
    work.mkdir(parents=True, exist_ok=True)
    jobs: list[tuple[list[str], Path]] = []
    for index, (topic, payloads) in enumerate(by_topic.items()):
        lines = work / f"{index}.lines"
        lines.write_bytes(b"".join(p + b"\n" for p in payloads))
        meter = topic.split("/")[1]
        argv = ["mosquitto_pub", "-h", LOOPBACK, "-p", str(port), "-q", "1", "-l", "-t", topic, *_auth_args(meter)]
        argv += ["-i", meter_client_id(meter)]  # a meter's login connects only with its own client id
        jobs.append((argv, lines))

    def run(job: tuple[list[str], Path]) -> None:
        argv, lines = job
        with lines.open("rb") as stdin:
            subprocess.run(argv, stdin=stdin, check=True, timeout=120)

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        list(pool.map(run, jobs))
    return time.perf_counter() - start


def drain_mosquitto_sub(name: str, port: int, client_id: str, messages: int, readings: int) -> Figure:
    """``mosquitto_sub`` takes its queued messages; first to last arrival from its ``%U`` stamps, its CPU."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [*_sub_argv(port, client_id), "-C", str(messages), "-F", "%U", "-W", "120"],
        check=True,
        timeout=130,
        capture_output=True,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    stamps = done.stdout.split()
    if len(stamps) != messages:
        raise RuntimeError(f"mosquitto_sub got {len(stamps)} of {messages} messages")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Figure(name, messages, readings, float(stamps[-1]) - float(stamps[0]), cpu)


def drain_bridge(
    name: str,
    port: int,
    client_id: str,
    messages: int,
    readings: int,
    work: Path,
    *,
    ingest_work: bool = True,
    profiler: cProfile.Profile | None = None,
) -> Figure:
    """The bridge's subscriber takes its queued messages into a fresh history and store (``ingest_work`` False: a
    handler that only counts; ``profiler``: enabled on the network thread from the connection to the last message)."""
    history = _fresh_history(work)
    ingest = _TimedIngest(history, messages, ingest_work)
    broker = BrokerAddress(LOOPBACK, port, secret=load_or_create_secret(fleet_secret()))
    subscriber = Subscriber(broker, ingest, client_id)
    if profiler is not None:
        ingest.profiler = profiler
        on_connack = subscriber._on_connack

        def profiled(code: int, session_present: bool) -> bool:
            profiler.enable()  # on the subscriber's network thread, which will run every handler
            return on_connack(code, session_present)

        subscriber._on_connack = profiled  # type: ignore[method-assign]
    cpu0 = time.process_time()
    subscriber.start()
    try:
        if not ingest.done.wait(timeout=max(60.0, messages / 500)):
            raise TimeoutError(f"the bridge got {ingest.count} of {messages} messages")
    finally:
        subscriber.stop()
    _closed(history, readings if ingest_work else 0)
    cpu = time.process_time() - cpu0
    if ingest_work:
        _check(ingest, readings)
    return Figure(name, messages, readings, ingest.last - ingest.first, cpu)


def _profile_text(profiler: cProfile.Profile, top: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def _us(figure: Figure) -> str:
    return "-" if figure.cpu_s is None else f"{figure.cpu_s / figure.readings * 1e6:.1f} us"


def _ratio(figure: Figure, baseline: Figure) -> str:
    return f"{figure.rate() / baseline.rate():.2f}x"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--meters", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=60, help="readings per meter")
    parser.add_argument("--broker", choices=["mosquitto"], default="mosquitto")
    parser.add_argument("--publishers", type=int, default=32, help="mosquitto_pub processes at a time")
    parser.add_argument("--profile", type=int, default=20, help="lines of the in-process profile (0: none)")
    parser.add_argument(
        "--profile-mqtt", type=int, default=0, help="lines of the subscriber thread's profile (0: none)"
    )
    parser.add_argument("--forms", default="single,batch")
    parser.add_argument("--no-mqtt", action="store_true", help="in-process figures only")
    args = parser.parse_args()
    forms = [f for f in args.forms.split(",") if f]
    if not set(forms) <= {"single", "batch"}:
        parser.error("--forms takes single and/or batch")
    if not args.no_mqtt and (missing := mosquitto_missing()):
        parser.error(missing)
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    try:
        _run(args, forms, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(args: argparse.Namespace, forms: list[str], work: Path) -> None:
    wall0 = time.perf_counter()
    payloads = fleet_payloads(args.meters, args.seconds)
    readings = sum(len(p) for p in payloads.values())
    made = {"single": single_messages(payloads), "batch": batch_messages(payloads)}
    print(f"{args.meters} meters x {args.seconds} s = {readings:,} readings; target {TARGET_PER_S:,} readings/s")
    results: dict[str, list[Figure]] = {}
    mqtt_profile = ""
    for form in forms:
        results[form] = [in_process(f"{form}: in process, Ingest.handle loop", made[form], readings, work / form)]
    if not args.no_mqtt:
        broker = start_broker(
            args.broker,
            work / "broker",
            meters=list(payloads),
            mosquitto_lines=["max_inflight_messages 100", f"max_queued_messages {2 * readings + 1000}"],
        )
        port = broker.port or 0
        with running(broker):
            for form in forms:
                messages = made[form]
                sub_id, null_id, bridge_id = f"bench-sub-{form}", f"bench-null-{form}", f"bench-bridge-{form}"
                prof_id = f"bench-profile-{form}" if args.profile_mqtt and form == "single" else None
                for client_id in (sub_id, null_id, bridge_id, prof_id):
                    if client_id is not None:
                        register_session(port, client_id)
                published = publish(port, messages, work / f"pub-{form}", args.publishers)
                print(f"{form}: published {len(messages):,} messages in {published:.1f} s ({args.publishers} at once)")
                results[form].append(
                    drain_mosquitto_sub(f"{form}: mosquitto_sub (C), baseline", port, sub_id, len(messages), readings)
                )
                results[form].append(
                    drain_bridge(
                        f"{form}: Subscriber, handler only counts",
                        port,
                        null_id,
                        len(messages),
                        readings,
                        work / f"null-{form}",
                        ingest_work=False,
                    )
                )
                results[form].append(
                    drain_bridge(
                        f"{form}: bridge Subscriber -> Ingest -> History",
                        port,
                        bridge_id,
                        len(messages),
                        readings,
                        work / f"bridge-{form}",
                    )
                )
                if prof_id is not None:
                    profiler = cProfile.Profile()
                    drain_bridge("", port, prof_id, len(messages), readings, work / "prof-mqtt", profiler=profiler)
                    mqtt_profile = _profile_text(profiler, args.profile_mqtt)
    for form in forms:
        print(f"\n{form} form:")
        figures = results[form]
        for figure in figures:
            print(figure.line())
        if len(figures) == 4:
            pure, sub, client, bridge = figures
            print(
                f"  ratios: bridge / mosquitto_sub {_ratio(bridge, sub)}, bridge / client alone "
                f"{_ratio(bridge, client)}, bridge / in process {_ratio(bridge, pure)}, "
                f"bridge / target {bridge.rate() / TARGET_PER_S:.2f}x"
            )
            print(
                f"  CPU per reading: bridge {_us(bridge)}, of which the client alone {_us(client)} and ingest in "
                f"process {_us(pure)}; one core at that CPU cost: "
                f"{bridge.readings / (bridge.cpu_s or 1):,.0f} readings/s"
            )
    if args.profile and "single" in forms:
        print("\nprofile: single form, Ingest.handle loop (cProfile, the calling thread only)")
        print(profile(made["single"], work / "profile", args.profile))
    if mqtt_profile:
        print("\nprofile: single form through MQTT, the subscriber's network thread (cProfile; not the store's writer)")
        print(mqtt_profile)
    print(f"run {time.perf_counter() - wall0:.0f} s")


if __name__ == "__main__":
    main()
