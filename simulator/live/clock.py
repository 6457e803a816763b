"""The simulation clock: a pure mapping between wall time and simulated time.

Simulated time is epoch seconds (UTC). ``speed`` simulated seconds pass per wall second. The clock never reads the
system clock itself: the caller passes wall readings in (``time.monotonic()`` in the publisher, anything in tests), so
the same code runs in real time, accelerated, or stepped by a test.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class SimClock:
    """Simulated time ``sim_origin + (wall - wall_origin) * speed``."""

    wall_origin: float
    sim_origin: float
    speed: float = 1.0

    def __post_init__(self) -> None:
        if not self.speed > 0:
            raise ValueError("speed must be > 0")

    def sim_at(self, wall: float) -> float:
        """Simulated epoch seconds at wall reading ``wall``."""
        return self.sim_origin + (wall - self.wall_origin) * self.speed

    def wall_at(self, sim: float) -> float:
        """Wall reading at which simulated time reaches ``sim``."""
        return self.wall_origin + (sim - self.sim_origin) / self.speed


def start_epoch(now_epoch: float, tz: ZoneInfo, start_s: int | None) -> float:
    """Simulated start: ``now_epoch``, or today (in ``tz``) at ``start_s`` seconds after local midnight."""
    if start_s is None:
        return now_epoch
    today = datetime.fromtimestamp(now_epoch, tz).date()
    midnight = datetime(today.year, today.month, today.day, tzinfo=tz)
    # Add to the wall-clock fields, then resolve: on DST days this keeps "HH:MM:SS" meaning local clock time.
    local = midnight + timedelta(seconds=start_s)
    return local.timestamp()
