"""Rendered SSE window events, shared by every stream that sends the same window (LRU, bounded)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Final

CACHE_SIZE: Final = 4096


class EventCache:
    """Rendered window events shared by every stream that sends the same window (LRU, bounded).

    Two thousand clients of one household and interval get the same bytes computed once, not two thousand times.
    """

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._events: OrderedDict[tuple[object, ...], bytes] = OrderedDict()

    def get(self, key: tuple[object, ...]) -> bytes | None:
        """The cached event, if any."""
        with self._lock:
            found = self._events.get(key)
            if found is not None:
                self._events.move_to_end(key)
            return found

    def put(self, key: tuple[object, ...], event: bytes) -> None:
        """Remember an event, dropping the least recently used past ``size``."""
        with self._lock:
            self._events[key] = event
            while len(self._events) > self.size:
                self._events.popitem(last=False)
