"""The meters of one simulator process: each a household profile plus its state, stepped by simulated time.

No I/O and no clock: ``Meter.due(sim_now)`` returns the readings whose second has fully passed at ``sim_now``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from config.households import Household, household, seed_index
from config.wire import Reading
from simulator.meter import MeterState, step
from simulator.profiles import BLOCK_S, ProfileBlock, classic_seconds


@dataclass(slots=True)
class Meter:
    """One simulated meter: a household template, its seed stream, its state and the cached profile block."""

    household: Household
    meter_index: int
    seed: int
    tz: ZoneInfo
    state: MeterState
    _block: ProfileBlock | None = field(default=None, repr=False)

    @property
    def meter_id(self) -> str:
        """The meter's id on the wire."""
        return self.state.meter_id

    def next_due_sim(self) -> float:
        """Simulated time at which the next reading is complete (the end of its second)."""
        return float(self.state.next_ts + 1)

    def _power_kw(self, ts: int) -> tuple[float, float, float]:
        block = self._block
        if block is None or not block.start_s <= ts < block.start_s + BLOCK_S:
            start = ts - ts % BLOCK_S
            block = classic_seconds(self.household, start, BLOCK_S, self.tz, self.seed, self.meter_index)
            self._block = block
        i = ts - block.start_s
        return float(block.ac_kw[i]), float(block.geyser_kw[i]), float(block.overall_kw[i])

    def due(self, sim_now: float, limit: int) -> list[Reading]:
        """Readings of every second that ended at or before ``sim_now``, oldest first, at most ``limit``."""
        readings: list[Reading] = []
        while len(readings) < limit and self.state.next_ts + 1 <= sim_now:
            ac, geyser, overall = self._power_kw(self.state.next_ts)
            self.state, reading = step(self.state, ac, geyser, overall)
            readings.append(reading)
        return readings


def build_meters(household_ids: Sequence[str], seed: int, tz: ZoneInfo, sim_start: float) -> list[Meter]:
    """Meters for these classic households, each starting at the second containing ``sim_start``."""
    meters: list[Meter] = []
    first_ts = math.floor(sim_start)
    for household_id in household_ids:
        template = household(household_id)
        state = MeterState(meter_id=template.id, seq=0, next_ts=first_ts)
        meters.append(Meter(template, seed_index(template.id), seed, tz, state))
    return meters
