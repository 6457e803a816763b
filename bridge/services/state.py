"""The bridge's per-app resources, kept in ``app.extensions["fleet"]`` (nothing is bound at import)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from bridge.http.eventcache import EventCache
from bridge.http.sessions import Sessions
from bridge.ingest.health import HealthBounds, HealthSignals
from bridge.ingest.history import History
from bridge.ingest.messages import Ingest
from bridge.ingest.subscriber import Subscriber
from bridge.services.baseline import Baselines
from config.settings import Settings
from config.wire import ONLINE


class Telemetry:
    """Counters and gauges of the bridge's own behaviour, thread-safe (read by /metrics and /healthz)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.windows_emitted = 0  # SSE window events sent, over all streams
        self.sse_clients = 0  # open SSE connections
        self.sse_resets = 0  # clients told to reset (fell too far behind)
        self.revisions_emitted = 0  # SSE revision events sent (windows corrected by late readings), over all streams
        self.revisions_skipped = 0  # windows a stream could not revise (bridge.windows.revisions.MAX_REVISIONS at once)
        self.started_wall = time.time()

    def window_sent(self) -> None:
        """Count one window event sent to a client."""
        with self._lock:
            self.windows_emitted += 1

    def revision_sent(self) -> None:
        """Count one revision event sent to a client."""
        with self._lock:
            self.revisions_emitted += 1

    def revisions_skipped_by(self, windows: int) -> None:
        """Count windows left unrevised."""
        with self._lock:
            self.revisions_skipped += windows

    def client_opened(self) -> None:
        """Count an SSE connection opening."""
        with self._lock:
            self.sse_clients += 1

    def reset_sent(self) -> None:
        """Count a client told to reset."""
        with self._lock:
            self.sse_resets += 1

    def client_closed(self) -> None:
        """Count an SSE connection closing."""
        with self._lock:
            self.sse_clients -= 1


@dataclass(slots=True)
class BridgeState:
    """History, ingest, sessions, baselines and the MQTT subscriber of one app."""

    settings: Settings
    zone: ZoneInfo
    history: History
    ingest: Ingest
    sessions: Sessions
    baselines: Baselines
    subscriber: Subscriber | None = None
    replays_requested: Counter[str] = field(default_factory=Counter)  # per meter: seqs asked for (bridge.ingest.repair)
    telemetry: Telemetry = field(default_factory=Telemetry)
    events: EventCache = field(default_factory=EventCache)
    clock: Callable[[], float] = time.time  # wall seconds, for /healthz's ages (unit tests inject their own)
    health_bounds: HealthBounds | None = None  # None: HealthBounds.for_speed(settings.speed)

    def known_households(self) -> list[str]:
        """Configured households plus every meter heard on the wire; of a shard (``FLEET_SHARD``), those it owns."""
        known = set(self.settings.households) | set(self.history.meters())
        return sorted(meter for meter in known if self.settings.owns(meter))

    def mqtt_alive(self) -> bool:
        """Whether the subscriber is connected and its session is not known dead (it delivers)."""
        return self.subscriber is not None and self.subscriber.alive()

    def bounds(self) -> HealthBounds:
        """The bounds /healthz judges by: this app's own, or those of the fleet's speed."""
        return self.health_bounds or HealthBounds.for_speed(self.settings.speed)

    def health_signals(self) -> HealthSignals:
        """The ages /healthz decides on, now."""
        now = self.clock()
        history = self.history
        online = [m for m in history.meters() if self.settings.owns(m) and history.summary(m).status == ONLINE]
        arrivals = self.ingest.arrivals()
        subscriber = self.subscriber
        # Silence counts from the newest of: a reading of an online meter, a status (a meter just came online), the
        # start (a meter online before the bridge started has had no chance yet).
        since = [arrivals[meter] for meter in online if meter in arrivals]
        since.append(self.telemetry.started_wall if subscriber is None else subscriber.started_s)
        if subscriber is not None and subscriber.last_status_s is not None:
            since.append(subscriber.last_status_s)
        return HealthSignals(
            online_meters=len(online),
            online_quiet_s=max(0.0, now - max(since)),
            last_message_age_s=None if subscriber is None else subscriber.last_message_age_s(),
            disconnected_s=None if subscriber is None else subscriber.disconnected_s(),
        )
