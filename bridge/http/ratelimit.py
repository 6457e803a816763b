"""Token buckets per client address (pure: the clock is a parameter, ``now_s`` in monotonic seconds).

Each address holds up to ``burst`` tokens and regains ``rate_per_s`` tokens a second; a request takes one token, and
with none left it is refused with the whole seconds until the next token (an HTTP ``Retry-After``). The table is
bounded: at most ``max_addresses`` addresses are tracked; an address whose bucket has refilled is forgotten (it is
indistinguishable from a new one), and past the cap the least recently seen address is dropped first.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

DEFAULT_BURST: Final = 60
DEFAULT_RATE_PER_S: Final = 10.0
DEFAULT_MAX_ADDRESSES: Final = 10_000


@dataclass(frozen=True, slots=True)
class RateLimit:
    """How many requests an address may make at once (``burst``) and how fast it earns more (``rate_per_s``)."""

    burst: int = DEFAULT_BURST
    rate_per_s: float = DEFAULT_RATE_PER_S
    max_addresses: int = DEFAULT_MAX_ADDRESSES

    def __post_init__(self) -> None:
        if self.burst < 1:
            raise ValueError(f"burst must be at least 1, not {self.burst}")
        if not (math.isfinite(self.rate_per_s) and self.rate_per_s > 0):
            raise ValueError(f"rate_per_s must be a positive number, not {self.rate_per_s}")
        if self.max_addresses < 1:
            raise ValueError(f"max_addresses must be at least 1, not {self.max_addresses}")

    @property
    def refill_s(self) -> float:
        """Seconds an empty bucket takes to fill up again."""
        return self.burst / self.rate_per_s


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at_s: float


class TokenBuckets:
    """One token bucket per key (a client address), at most ``limit.max_addresses`` of them."""

    def __init__(self, limit: RateLimit | None = None) -> None:
        self.limit = limit if limit is not None else RateLimit()
        self._lock = threading.Lock()
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()  # least recently seen first

    def take(self, key: str, now_s: float) -> int:
        """Take a token for ``key``: 0 if granted, else the whole seconds (at least 1) until one is available."""
        limit = self.limit
        with self._lock:
            self._forget_idle(now_s)
            bucket = self._buckets.pop(key, None)
            if bucket is None:
                bucket = _Bucket(float(limit.burst), now_s)
            elapsed_s = max(0.0, now_s - bucket.at_s)  # a clock that steps back never mints tokens
            bucket.tokens = min(float(limit.burst), bucket.tokens + elapsed_s * limit.rate_per_s)
            bucket.at_s = max(bucket.at_s, now_s)
            self._buckets[key] = bucket  # most recently seen last
            while len(self._buckets) > limit.max_addresses:
                self._buckets.popitem(last=False)
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0
            return max(1, math.ceil((1.0 - bucket.tokens) / limit.rate_per_s))

    def _forget_idle(self, now_s: float) -> None:
        """Drop the least recently seen buckets that have refilled by now (they hold nothing a new one would not)."""
        refill_s = self.limit.refill_s
        while self._buckets:
            oldest = next(iter(self._buckets.values()))
            if now_s - oldest.at_s < refill_s:
                return
            self._buckets.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._buckets)
