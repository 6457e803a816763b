"""The bridge's core resources of one app (``BridgeState``): settings, history, ingest, baselines, the MQTT subscriber
and the health they add up to; built by ``bridge.runtime``, read by the HTTP layer."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from bridge.ingest.health import HealthBounds, HealthSignals
from bridge.ingest.history import History
from bridge.ingest.messages import Ingest
from bridge.ingest.subscriber import Subscriber
from bridge.services.baseline import Baselines
from config.settings import Settings
from config.wire import ONLINE


@dataclass(slots=True)
class BridgeState:
    """History, ingest, baselines and the MQTT subscriber of one app."""

    settings: Settings
    zone: ZoneInfo
    history: History
    ingest: Ingest
    baselines: Baselines
    subscriber: Subscriber | None = None
    replays_requested: Counter[str] = field(default_factory=Counter)  # per meter: seqs asked for (bridge.ingest.repair)
    started_wall: float = field(default_factory=time.time)  # without MQTT, /healthz's silence counts from here
    clock: Callable[[], float] = time.time  # wall seconds, for /healthz's ages (unit tests inject their own)
    health_bounds: HealthBounds | None = None  # None: HealthBounds.for_speed(settings.speed)

    @classmethod
    def build(
        cls,
        settings: Settings,
        history: History,
        ingest: Ingest,
        subscriber: Subscriber | None = None,
        replays_requested: Counter[str] | None = None,
    ) -> BridgeState:
        """The state around ``history`` and its ``ingest``, with baselines of its own (not started);
        ``replays_requested``: the gap repairer's counter (None: a fresh one)."""
        zone = settings.zone()
        return cls(
            settings=settings,
            zone=zone,
            history=history,
            ingest=ingest,
            baselines=Baselines(history, zone, settings.grace_s, span_s=settings.stats_span_s),
            subscriber=subscriber,
            replays_requested=Counter() if replays_requested is None else replays_requested,
        )

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
        since.append(self.started_wall if subscriber is None else subscriber.started_s)
        if subscriber is not None and subscriber.last_status_s is not None:
            since.append(subscriber.last_status_s)
        return HealthSignals(
            online_meters=len(online),
            online_quiet_s=max(0.0, now - max(since)),
            last_message_age_s=None if subscriber is None else subscriber.last_message_age_s(),
            disconnected_s=None if subscriber is None else subscriber.disconnected_s(),
        )
