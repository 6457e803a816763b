"""Load profiles: what each appliance of a household draws in each simulated second.

Pure: every function takes time (epoch seconds, UTC) and a ``numpy.random.Generator`` and returns arrays; none reads
the clock or global random state. Power is in kW. Sample ``i`` of a block covers ``[start_s + i, start_s + i + 1)``.

Randomness is keyed by simulated time, not by call order (see ``simulator.seeds``): the draws of second ``t`` of a
meter come from the generator of ``(NOISE, *meter_key, t // BLOCK_S)``. So a live meter, a restarted meter and a batch
generator give the same value for the same simulated second, whatever second they started at.

Every profile is a ``MeterProfile``: ``block(start_s, n)`` gives any stretch of seconds of one meter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Protocol
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from config.households import Household
from simulator.seeds import MeterKey, Purpose, rng_for

BLOCK_S: Final = 60
_TZ_BUCKET_S: Final = 900  # every UTC offset in use is a multiple of 15 min, so is every transition instant

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class ProfileBlock:
    """Per-second power of the three channels for seconds ``start_s .. start_s + len - 1``."""

    start_s: int
    ac_kw: FloatArray
    geyser_kw: FloatArray
    overall_kw: FloatArray


class MeterProfile(Protocol):
    """What one meter draws, as a pure function of simulated time: any start, any length, same answer every time."""

    def block(self, start_s: int, n: int) -> ProfileBlock:
        """Power of seconds ``start_s .. start_s + n - 1``."""
        ...


def block_rng(seed: int, meter_key: MeterKey, block: int) -> np.random.Generator:
    """The generator of one meter's block of ``BLOCK_S`` seconds (block = epoch seconds // BLOCK_S)."""
    return rng_for(seed, Purpose.NOISE, meter_key, block)


def local_hours(ts: IntArray, tz: ZoneInfo) -> IntArray:
    """Local hour of day (0-23) in ``tz`` of each epoch second in ``ts``."""
    buckets = ts // _TZ_BUCKET_S
    unique, inverse = np.unique(buckets, return_inverse=True)
    offsets = np.array(
        [_utc_offset_s(int(bucket) * _TZ_BUCKET_S, tz) for bucket in unique],
        dtype=np.int64,
    )
    local = ts + offsets[inverse.reshape(-1)]
    return np.asarray((local % 86_400) // 3600, dtype=np.int64)


def _utc_offset_s(epoch_s: int, tz: ZoneInfo) -> int:
    from datetime import UTC, datetime

    offset = datetime.fromtimestamp(epoch_s, UTC).astimezone(tz).utcoffset()
    return 0 if offset is None else int(offset.total_seconds())


def _schedule(hours: IntArray, blocks: tuple[tuple[int, int], ...], level_kw: float) -> FloatArray:
    on = np.zeros(hours.shape, dtype=bool)
    for start, end in blocks:
        on |= (hours >= start) & (hours < end)
    return np.where(on, level_kw, 0.0).astype(np.float64)


def classic(household: Household, start_s: int, n: int, tz: ZoneInfo, rng: np.random.Generator) -> ProfileBlock:
    """The original generator's schedule: AC and Geyser flat by local hour, Overall = base + AC + Geyser + U(lo, hi)."""
    ts = np.arange(start_s, start_s + n, dtype=np.int64)
    hours = local_hours(ts, tz)
    ac = _schedule(hours, household.ac_hours, household.ac_kw)
    geyser = _schedule(hours, household.geyser_hours, household.geyser_kw)
    other = rng.uniform(household.other_kw_low, household.other_kw_high, size=n)
    overall = household.base_kw + ac + geyser + other
    return ProfileBlock(start_s, ac, geyser, overall)


def classic_seconds(
    household: Household, start_s: int, n: int, tz: ZoneInfo, seed: int, meter_key: MeterKey
) -> ProfileBlock:
    """``n`` seconds from ``start_s`` with time-keyed randomness (see module docstring); any start, any length."""
    if n <= 0:
        empty = np.zeros(0, dtype=np.float64)
        return ProfileBlock(start_s, empty, empty.copy(), empty.copy())
    first_block = start_s // BLOCK_S
    last_block = (start_s + n - 1) // BLOCK_S
    parts = [
        classic(household, block * BLOCK_S, BLOCK_S, tz, block_rng(seed, meter_key, block))
        for block in range(first_block, last_block + 1)
    ]
    offset = start_s - first_block * BLOCK_S
    window = slice(offset, offset + n)
    return ProfileBlock(
        start_s,
        np.concatenate([p.ac_kw for p in parts])[window],
        np.concatenate([p.geyser_kw for p in parts])[window],
        np.concatenate([p.overall_kw for p in parts])[window],
    )


@dataclass(frozen=True, slots=True)
class ClassicProfile:
    """The original schedules for one meter (a ``MeterProfile``)."""

    household: Household
    tz: ZoneInfo
    seed: int
    meter_key: MeterKey

    def block(self, start_s: int, n: int) -> ProfileBlock:
        """Power of seconds ``start_s .. start_s + n - 1``."""
        return classic_seconds(self.household, start_s, n, self.tz, self.seed, self.meter_key)
