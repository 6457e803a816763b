"""``GET /metrics``: Prometheus text exposition of the bridge's live state, read at scrape time.

Nothing is bound at import: ``init_app`` gives each app its own ``CollectorRegistry`` (``REGISTRY.get(app)``) holding
one ``BridgeCollector`` that reads the app's ``BridgeState`` and SSE ``Telemetry`` when scraped, so the numbers are the
ones ``/healthz`` shows, with no second set of counters to keep in step.

Two lags per meter: ``ingest_lag_seconds`` is wall time since its last reading arrived (the meter or the broker went
quiet); ``watermark_lag_seconds`` is simulated time its newest reading is behind the newest meter's (one meter fell
behind the fleet).

The process itself, for soak tests and leak hunting: the standard ``process_*`` families of prometheus_client
(resident memory, CPU seconds, open file descriptors; Linux only, from ``/proc/self``), plus ``fleet_bridge_threads``
(Python threads alive: under gevent's monkey-patching these are greenlets too), ``fleet_bridge_os_threads`` (kernel
threads, ``/proc/self/task``) and ``fleet_bridge_greenlets`` (greenlets not yet finished). Counting greenlets walks
every object the garbage collector tracks: about 10 ms per scrape here (500 streams), paid only when scraped.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Final

from flask import Blueprint, Flask, Response, current_app
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from bridge.http.state import STATE, AppKey, Telemetry
from bridge.ingest.messages import INTERNAL
from bridge.ingest.store import QUEUE_MAX
from bridge.services.state import BridgeState
from config.wire import REASONS

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"  # the text format every Prometheus reads
PREFIX: Final = "fleet_bridge"
REGISTRY: Final = AppKey("fleet_metrics", CollectorRegistry)

bp = Blueprint("metrics", __name__)


class BridgeCollector:
    """Reads the counters and gauges of one app's ``BridgeState`` and SSE ``Telemetry`` at each scrape."""

    def __init__(self, state: BridgeState, telemetry: Telemetry, clock: Callable[[], float] = time.time) -> None:
        self.state = state
        self.telemetry = telemetry
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        """The metric families, as of now."""
        state = self.state
        counts = state.ingest.counters()  # one consistent snapshot, as /healthz shows it
        rejected = counts["rejected"]
        assert isinstance(rejected, dict)
        yield _counter(
            "readings_received", "Readings accepted into history (new seconds).", _number(counts["accepted"])
        )
        yield _counter(
            "readings_duplicate", "Readings already held (redelivered), dropped.", _number(counts["duplicates"])
        )
        reasons = CounterMetricFamily(
            f"{PREFIX}_messages_rejected", "MQTT messages rejected, by reason.", labels=["reason"]
        )
        for reason in sorted({*REASONS, INTERNAL, *rejected}):
            reasons.add_metric([reason], _number(rejected.get(reason, 0)))
        yield reasons

        telemetry = self.telemetry
        yield _counter("sse_windows_emitted", "Window events sent over all SSE streams.", telemetry.windows_emitted)
        yield _gauge("sse_clients", "Open SSE connections.", telemetry.sse_clients)
        yield _counter(
            "sse_resets", "SSE clients told to reset (history lost their next window).", telemetry.sse_resets
        )
        yield _counter(
            "sse_revisions_emitted",
            "Revision events sent over all SSE streams (windows corrected by late readings).",
            telemetry.revisions_emitted,
        )
        yield _counter(
            "sse_revisions_skipped",
            "Windows an SSE stream left unrevised (too many to revise at once).",
            telemetry.revisions_skipped,
        )

        history = state.history
        meters = history.meters()
        yield _gauge("meters_known", "Meters heard on the wire (readings or status).", len(meters))
        yield from _mqtt(state)
        yield from _ingest_backlog(state)
        yield from self._per_meter(meters)
        yield from _process()

    def _per_meter(self, meters: list[str]) -> Iterator[Metric]:
        marks = {meter: mark for meter in meters if (mark := self.state.history.watermark(meter)) is not None}
        arrivals = self.state.ingest.arrivals()
        now = self.clock()
        last = GaugeMetricFamily(
            f"{PREFIX}_meter_last_reading_timestamp_seconds",
            "Simulated time (epoch seconds) of each meter's newest reading.",
            labels=["meter"],
        )
        behind = GaugeMetricFamily(
            f"{PREFIX}_meter_watermark_lag_seconds",
            "Simulated seconds each meter's newest reading is behind the newest of any meter.",
            labels=["meter"],
        )
        newest = max(marks.values(), default=0)
        for meter, mark in sorted(marks.items()):
            last.add_metric([meter], mark - 1)
            behind.add_metric([meter], newest - mark)
        quiet = GaugeMetricFamily(
            f"{PREFIX}_meter_ingest_lag_seconds",
            "Wall seconds since each meter's last reading arrived.",
            labels=["meter"],
        )
        for meter, arrived in sorted(arrivals.items()):
            quiet.add_metric([meter], max(0.0, now - arrived))
        gaps = GaugeMetricFamily(
            f"{PREFIX}_meter_gaps_open", "Seqs missing below each meter's highest (lost so far).", labels=["meter"]
        )
        repaired = CounterMetricFamily(
            f"{PREFIX}_meter_gaps_repaired", "Missing seqs that arrived later, per meter.", labels=["meter"]
        )
        # The rest of /api/meters' figures, per meter.
        last_seq = GaugeMetricFamily(f"{PREFIX}_meter_last_seq", "Each meter's newest seq received.", labels=["meter"])
        received = CounterMetricFamily(
            f"{PREFIX}_meter_readings_received", "Readings accepted into history, per meter.", labels=["meter"]
        )
        duplicates = CounterMetricFamily(
            f"{PREFIX}_meter_readings_duplicate", "Readings already held (redelivered), per meter.", labels=["meter"]
        )
        restarts = CounterMetricFamily(
            f"{PREFIX}_meter_seq_restarts", "Times each meter started a new sequence.", labels=["meter"]
        )
        replayed = CounterMetricFamily(
            f"{PREFIX}_meter_replay_requested", "Seqs the bridge asked each meter to publish again.", labels=["meter"]
        )
        rejected = CounterMetricFamily(
            f"{PREFIX}_meter_messages_rejected",
            "Messages on each meter's topics rejected, by reason.",
            labels=["meter", "reason"],
        )
        for meter in meters:
            summary = self.state.history.summary(meter)
            gaps.add_metric([meter], summary.gaps_open)
            repaired.add_metric([meter], summary.gaps_repaired)
            if summary.last_seq is not None:
                last_seq.add_metric([meter], summary.last_seq)
            received.add_metric([meter], summary.received)
            duplicates.add_metric([meter], summary.duplicates)
            restarts.add_metric([meter], summary.seq_restarts)
            replayed.add_metric([meter], self.state.replays_requested[meter])
            for reason, count in sorted(self.state.ingest.rejected_of(meter).items()):
                rejected.add_metric([meter, reason], count)
        yield from (last, behind, quiet, gaps, repaired, last_seq, received, duplicates, restarts, replayed, rejected)


def _mqtt(state: BridgeState) -> Iterator[Metric]:
    """The MQTT session: connected and delivering, how long since it delivered, reconnects forced, probes back."""
    subscriber = state.subscriber
    yield _gauge(
        "mqtt_connected",
        "1 while the subscriber is connected and its session delivers; 0 while disconnected or known dead.",
        int(state.mqtt_alive()),
    )
    age = GaugeMetricFamily(
        f"{PREFIX}_mqtt_last_message_age_seconds",
        "Wall seconds since the MQTT session delivered any message (reading, status, the bridge's own probe).",
    )
    if subscriber is not None:  # no sample without MQTT
        age.add_metric([], subscriber.last_message_age_s())
    yield age
    yield _counter(
        "mqtt_forced_reconnects",
        "Reconnects the watchdog forced: connected, yet nothing delivered, not even the probe (a dead session).",
        0 if subscriber is None else subscriber.watch.forced,
    )
    yield _counter(
        "mqtt_probes_received",
        "The bridge's own liveness probes delivered back to it (bridges/<client id>/probe).",
        0 if subscriber is None else subscriber.probes_received,
    )
    yield _counter(
        "messages_foreign",
        "Meter messages dropped by a sharded bridge: for a meter it does not own (FLEET_SHARD).",
        0 if subscriber is None else subscriber.foreign,
    )
    store = state.history.store
    yield _counter(
        "store_dropped",
        "Readings kept in memory but never written to disk: the disk was too far behind"
        " (bridge.ingest.store.QUEUE_MAX).",
        0 if store is None else store.dropped,
    )


def _ingest_backlog(state: BridgeState) -> Iterator[Metric]:
    """Whether the bridge keeps up with its meters: what waits inside it, and how far behind the meters it is."""
    store = state.history.store
    depth = GaugeMetricFamily(
        f"{PREFIX}_ingest_queue_depth",
        "Readings waiting inside the bridge, by stage. store: accepted into memory, queued for SQLite or being written"
        " (bridge.ingest.store's writer). The MQTT callback puts each reading into history and this queue itself:"
        " nothing"
        " else waits between them. Past ingest_queue_limit a reading is kept in memory only, counted in store_dropped.",
        labels=["stage"],
    )
    depth.add_metric(["store"], 0 if store is None else store.pending())
    yield depth
    limit = GaugeMetricFamily(
        f"{PREFIX}_ingest_queue_limit", "The most readings each stage holds (see ingest_queue_depth).", labels=["stage"]
    )
    limit.add_metric(["store"], QUEUE_MAX)
    yield limit
    lag = GaugeMetricFamily(
        f"{PREFIX}_ingest_lag_seconds",
        "How far behind its meters the bridge is, in wall seconds: per meter not offline, its estimated current time"
        " (bridge.ingest.sequence.MeterClock: its newest reading's second plus the wall time since it arrived, times"
        " FLEET_SPEED; never set back by a reading that arrives late) minus the end of the newest second held, over"
        " FLEET_SPEED; the smallest over those meters. About 0-1 while readings arrive as they are made. It grows by a"
        " second a second while readings wait before the bridge (its MQTT socket, the broker's queue for its session)"
        " or none arrive at all: every live meter is at least this far behind, so it is the bridge or its broker, not"
        " one meter (meter_ingest_lag_seconds tells which meter went quiet). No sample before a reading.",
    )
    lags = state.history.ingest_lags()
    if lags:
        lag.add_metric([], min(lags.values()))
    yield lag
    yield _counter(
        "store_failed",
        "Readings kept in memory whose write to disk failed (logged): never on disk.",
        0 if store is None else store.failed,
    )


def _process() -> Iterator[Metric]:
    """Threads and greenlets of this process (memory, CPU and descriptors come from ``ProcessCollector``)."""
    yield _gauge("threads", "Python threads alive (greenlet-backed ones under gevent too).", threading.active_count())
    yield _gauge("os_threads", "Kernel threads of the process (/proc/self/task; 0 without /proc).", _os_threads())
    yield _gauge("greenlets", "Greenlets started and not finished (0 without greenlet).", _greenlets())


def _os_threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 0


def _greenlets() -> int:
    """Live greenlets, found by walking the garbage collector's objects (greenlet keeps no registry)."""
    module = sys.modules.get("greenlet")  # loaded by gevent; never imported here just to count zero
    if module is None:
        return 0
    kind = module.greenlet
    return sum(1 for obj in gc.get_objects() if isinstance(obj, kind) and not obj.dead)


def _number(value: object) -> float:
    if not isinstance(value, int | float):
        raise TypeError(f"not a number: {value!r}")
    return value


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(f"{PREFIX}_{name}", documentation, value=value)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", documentation, value=value)


def init_app(app: Flask) -> None:
    """Give ``app`` its registry (collecting from its ``bridge.http.state.STATE``) and the ``/metrics`` route."""
    state = STATE.get(app)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BridgeCollector(state.core, state.telemetry))
    ProcessCollector(registry=registry)  # process_resident_memory_bytes, process_open_fds, ... (reads /proc/self)
    REGISTRY.set(app, registry)
    app.register_blueprint(bp)


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus text exposition of this app's registry."""
    response = Response(generate_latest(REGISTRY.get(current_app)), content_type=CONTENT_TYPE)
    response.cache_control.no_store = True
    return response
