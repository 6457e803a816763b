"""When meters publish and connect: per-meter jitter, the queue of next-due times, connect pacing, reconnect back-off
and a lateness histogram (pure: times are arguments, nothing here reads a clock).

Jitter: a meter publishes its reading of second ``[t, t + 1)`` at simulated time ``t + 1 + offset``, where ``offset``
in ``[0, 1)`` is a fraction of a simulated second fixed by the meter id (a hash, so a restarted meter keeps it). At
speed 1 that spreads a fleet's publishes evenly over each wall second instead of one burst per tick.

Times in seconds; ``wall`` is whatever monotonic clock the caller uses.
"""

from __future__ import annotations

import hashlib
import heapq
from dataclasses import dataclass
from typing import Final

DEFAULT_CONNECT_RATE: Final = 1000.0  # new connections per second, all meters together (Mosquitto took 1,900/s here)
CONNECT_BURST_S: Final = 0.25  # the pacer lets at most this much of a second's allowance through at once
LATENESS_BUCKET_S: Final = 0.001
LATENESS_BUCKETS: Final = 60_000  # 1 ms buckets up to 60 s; later ones are counted in the last bucket


def jitter_offset(meter_id: str) -> float:
    """The meter's publish offset, a fraction of a second in ``[0, 1)``, fixed by its id."""
    digest = hashlib.blake2b(meter_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class DueQueue:
    """Keys ordered by the time they are next due (a heap): ``pop_due`` touches only what is due."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, str]] = []
        self._order = 0  # ties keep insertion order

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, at: float, key: str) -> None:
        """``key`` is due at ``at``."""
        heapq.heappush(self._heap, (at, self._order, key))
        self._order += 1

    def pop_due(self, now: float, limit: int | None = None) -> list[str]:
        """Take the keys due at or before ``now``, earliest first (at most ``limit``)."""
        due: list[str] = []
        heap = self._heap
        while heap and heap[0][0] <= now and (limit is None or len(due) < limit):
            due.append(heapq.heappop(heap)[2])
        return due

    def next_at(self) -> float | None:
        """When the earliest key is due (None: empty)."""
        return self._heap[0][0] if self._heap else None


class ConnectPacer:
    """A token bucket: at most ``rate_per_s`` connection attempts per second, in bursts of at most a quarter of it."""

    def __init__(self, rate_per_s: float = DEFAULT_CONNECT_RATE, now: float = 0.0) -> None:
        if not rate_per_s > 0:
            raise ValueError("rate_per_s must be > 0")
        self.rate_per_s = rate_per_s
        self.capacity = max(1.0, rate_per_s * CONNECT_BURST_S)
        self._tokens = self.capacity
        self._at = now

    def take(self, now: float, wanted: int) -> int:
        """How many of ``wanted`` attempts may start at ``now`` (they are counted as spent)."""
        if now > self._at:
            self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate_per_s)
            self._at = now
        granted = min(wanted, int(self._tokens + 1e-9))  # 1e-9: float sums of refills
        self._tokens -= granted
        return max(granted, 0)

    def next_at(self) -> float:
        """When at least one attempt will be allowed."""
        return self._at + max(0.0, 1.0 - self._tokens) / self.rate_per_s


def backoff_delay(backoff_s: float, u: float) -> float:
    """Delay before the next connection attempt: "full jitter", uniform in ``[0, backoff_s)`` for ``u`` in ``[0, 1)``,
    so meters that lost the broker together do not come back together."""
    return backoff_s * u


def backoff_step(backoff_s: float, u: float, max_s: float) -> tuple[float, float]:
    """One failed attempt under exponential back-off: its delay (``backoff_delay``) and the back-off after it
    (doubled, at most ``max_s``)."""
    return backoff_delay(backoff_s, u), min(backoff_s * 2, max_s)


@dataclass(frozen=True, slots=True)
class LatenessSummary:
    """Percentiles of publish lateness (s), and how many readings were counted, held back, or within the bound."""

    count: int
    held: int
    within: int
    bound_s: float
    p50_s: float
    p99_s: float
    p999_s: float
    max_s: float

    @property
    def within_fraction(self) -> float:
        """Readings published within ``bound_s`` of their schedule, of all counted (held ones are late)."""
        total = self.count + self.held
        return self.within / total if total else 1.0

    def line(self) -> str:
        """One line for the log."""
        return (
            f"n={self.count} held={self.held} p50={self.p50_s * 1000:.1f}ms p99={self.p99_s * 1000:.1f}ms "
            f"p99.9={self.p999_s * 1000:.1f}ms max={self.max_s * 1000:.1f}ms "
            f"within {self.bound_s * 1000:.0f}ms: {self.within_fraction * 100:.3f}%"
        )


class LatenessHistogram:
    """Publish time minus scheduled time, in 1 ms buckets (bounded memory however long the run)."""

    def __init__(self) -> None:
        self._buckets = [0] * LATENESS_BUCKETS
        self.count = 0
        self.held = 0
        self.max_s = 0.0

    def add(self, lateness_s: float, n: int = 1) -> None:
        """``n`` readings went out ``lateness_s`` after their schedule (early counts as 0)."""
        i = min(LATENESS_BUCKETS - 1, max(0, int(lateness_s / LATENESS_BUCKET_S)))
        self._buckets[i] += n
        self.count += n
        self.max_s = max(self.max_s, lateness_s)

    def add_held(self, n: int) -> None:
        """``n`` readings could not go out live (no connection): they count as late."""
        self.held += n

    def _quantile(self, q: float) -> float:
        if self.count == 0:
            return 0.0
        rank = q * self.count
        seen = 0
        for i, n in enumerate(self._buckets):
            seen += n
            if seen >= rank and n:
                return min((i + 1) * LATENESS_BUCKET_S, self.max_s)  # the bucket's upper edge: never flatters
        return self.max_s

    def summary(self, bound_s: float = 0.2) -> LatenessSummary:
        """Percentiles (upper bucket edges) and the count within ``bound_s``."""
        within = sum(self._buckets[: round(bound_s / LATENESS_BUCKET_S)])
        return LatenessSummary(
            self.count,
            self.held,
            within,
            bound_s,
            self._quantile(0.5),
            self._quantile(0.99),
            self._quantile(0.999),
            self.max_s,
        )
