"""What the fleet benchmarks share: a row's delivered rate against the N readings a second its N meters offer."""

from __future__ import annotations


class OfferedRate:
    """Mixed into a benchmark's row (a dataclass with these fields)."""

    meters: int
    span_s: float
    delivered: int

    @property
    def per_s(self) -> float:
        """Readings delivered per second."""
        return self.delivered / self.span_s

    @property
    def share(self) -> float:
        """Delivered over offered (N readings a second)."""
        return self.per_s / self.meters
