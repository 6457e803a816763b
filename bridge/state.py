"""The bridge's per-app resources, kept in ``app.extensions["fleet"]`` (nothing is bound at import)."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from bridge.baseline import Baselines
from bridge.history import History
from bridge.ingest import Ingest
from bridge.sessions import Sessions
from bridge.subscriber import Subscriber
from config.settings import Settings


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

    def known_households(self) -> list[str]:
        """Configured households plus every meter heard on the wire."""
        return sorted(set(self.settings.households) | set(self.history.meters()))

    def mqtt_connected(self) -> bool:
        """Whether the subscriber is connected to the broker."""
        return self.subscriber is not None and self.subscriber.connected
