"""Stream sessions: each setup gets its own stream id, so one client's setup never changes another's stream."""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

from bridge.http.validation import SetupRequest

MAX_SESSIONS: Final = 10_000


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """What a client asked to stream."""

    stream_id: str
    household: str
    interval_s: int
    start_index: int | None
    paced: bool = True
    by_hour: bool = False


class Sessions:
    """Setups by stream id, least recently used evicted past ``limit``; remembers the most recent setup."""

    def __init__(self, limit: int = MAX_SESSIONS) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._specs: OrderedDict[str, StreamSpec] = OrderedDict()
        self._latest: str | None = None

    def create(self, request: SetupRequest) -> StreamSpec:
        """Store a new stream for this request and make it the most recent."""
        spec = StreamSpec(
            secrets.token_urlsafe(12),
            request.household,
            request.interval_s,
            request.start_index,
            request.paced,
            request.by_hour,
        )
        with self._lock:
            self._specs[spec.stream_id] = spec
            self._latest = spec.stream_id
            while len(self._specs) > self.limit:
                self._specs.popitem(last=False)
        return spec

    def get(self, stream_id: str) -> StreamSpec | None:
        """The stream with this id, if known."""
        with self._lock:
            spec = self._specs.get(stream_id)
            if spec is not None:
                self._specs.move_to_end(stream_id)
            return spec

    def latest(self) -> StreamSpec | None:
        """The most recent setup still held."""
        with self._lock:
            return None if self._latest is None else self._specs.get(self._latest)

    def __len__(self) -> int:
        with self._lock:
            return len(self._specs)
