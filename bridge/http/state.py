"""Per-app state of the HTTP layer, read through one typed key (nothing is bound at import).

``STATE.get(app)`` (in a request: ``current()``) is the app's ``AppState``: the runtime it serves
(``bridge.runtime.BridgeRuntime``; ``core`` is its ``BridgeState``: history, ingest, baselines, the subscriber) and what
only HTTP needs: stream sessions, the rate limit of setups, the cache of rendered SSE events and the SSE telemetry.
``AppKey`` is the accessor, as Home Assistant's ``hass.data[DATA_MQTT]`` typed by ``HassKey[MqttData]``: a name in
``app.extensions`` and the type of what it holds, checked on the way out.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Final, Generic, TypeVar

from flask import Flask, current_app

from bridge.http.eventcache import EventCache
from bridge.http.ratelimit import TokenBuckets
from bridge.http.sessions import Sessions
from bridge.runtime import BridgeRuntime
from bridge.services.state import BridgeState

T = TypeVar("T")


class AppKey(Generic[T]):
    """A typed key into ``app.extensions``: what ``set`` stores under ``name`` is a ``kind``, and ``get`` says so."""

    __slots__ = ("kind", "name")

    def __init__(self, name: str, kind: type[T]) -> None:
        self.name = name
        self.kind = kind

    def set(self, app: Flask, value: T) -> None:
        """Store ``value`` as this app's."""
        app.extensions[self.name] = value

    def get(self, app: Flask) -> T:
        """This app's value; LookupError if it has none (an app that ``create_app`` did not build)."""
        value = app.extensions.get(self.name)
        if not isinstance(value, self.kind):
            raise LookupError(f"app.extensions[{self.name!r}] holds no {self.kind.__name__}")
        return value


class Telemetry:
    """Counters and gauges of the SSE streams, thread-safe (read by /metrics)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.windows_emitted = 0  # SSE window events sent, over all streams
        self.sse_clients = 0  # open SSE connections
        self.sse_resets = 0  # clients told to reset (fell too far behind)
        self.revisions_emitted = 0  # SSE revision events sent (windows corrected by late readings), over all streams
        self.revisions_skipped = 0  # windows a stream could not revise (bridge.windows.revisions.MAX_REVISIONS at once)

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
class AppState:
    """One app's runtime and the HTTP layer's own parts."""

    runtime: BridgeRuntime
    setups: TokenBuckets = field(default_factory=TokenBuckets)  # POST /stream_setup, per client address
    sessions: Sessions = field(default_factory=Sessions)
    events: EventCache = field(default_factory=EventCache)
    telemetry: Telemetry = field(default_factory=Telemetry)

    @property
    def core(self) -> BridgeState:
        """The runtime's resources: settings, history, ingest, baselines, the subscriber."""
        return self.runtime.state


STATE: Final = AppKey("fleet", AppState)


def current() -> AppState:
    """The state of the app handling this request."""
    return STATE.get(current_app)
