"""The classic profile: what each appliance of a classic household draws in each simulated second, by hour blocks.

Pure: every function takes time (epoch seconds, UTC) and a ``numpy.random.Generator`` and returns arrays; none reads
the clock or global random state. Power is in kW. Sample ``i`` of a block covers ``[start_s + i, start_s + i + 1)``.

Randomness is keyed by simulated time, not by call order (see ``simulator.seeds``): the classic draws of UTC day ``d``
of a meter are one stream, the generator of ``(NOISE, *meter_key, d)``, and second ``t`` takes draw number
``t - d * 86400`` of it (``PCG64.advance`` jumps there: one 64-bit draw per uniform double). So a live meter, a
restarted meter and a batch generator give the same value for the same simulated second, whatever second they start
at, and a whole day costs one generator.

Every profile is a ``MeterProfile`` (``simulator.profiles.block``): ``block(start_s, n)`` gives any stretch of seconds
of one meter.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from config.households import Household
from config.localtime import local_hours
from simulator.profiles.block import FloatArray, ProfileBlock
from simulator.seeds import MeterKey, Purpose, rng_for

NOISE_DAY_S: Final = 86_400

IntArray = npt.NDArray[np.int64]


def noise_rng(seed: int, meter_key: MeterKey, utc_day: int) -> np.random.Generator:
    """The generator of one meter's classic draws for UTC day ``utc_day`` (epoch seconds // 86400)."""
    return rng_for(seed, Purpose.NOISE, meter_key, utc_day)


def day_keyed_uniform(seed: int, meter_key: MeterKey, start_s: int, n: int, low: float, high: float) -> FloatArray:
    """Uniform draws for seconds ``start_s .. start_s + n - 1``, each the same whoever asks and from where."""
    out = np.empty(n, dtype=np.float64)
    pos = 0
    while pos < n:
        second = start_s + pos
        day, offset = divmod(second, NOISE_DAY_S)
        count = min(n - pos, NOISE_DAY_S - offset)
        rng = noise_rng(seed, meter_key, day)
        bits = rng.bit_generator
        assert isinstance(bits, np.random.PCG64)  # advance() is PCG64's
        bits.advance(offset)
        out[pos : pos + count] = rng.uniform(low, high, size=count)
        pos += count
    return out


def _schedule(hours: IntArray, blocks: tuple[tuple[int, int], ...], level_kw: float) -> FloatArray:
    hour = np.arange(24)
    on = np.zeros(24, dtype=bool)
    for start, end in blocks:
        on |= (hour >= start) & (hour < end)
    # the level of each hour of the day, looked up per second (one pass, not a comparison per block and a where)
    return np.where(on, level_kw, 0.0).astype(np.float64, copy=False).take(hours)


def classic(household: Household, start_s: int, n: int, tz: ZoneInfo, rng: np.random.Generator) -> ProfileBlock:
    """The original generator's schedule: AC and Geyser flat by local hour, Overall = base + AC + Geyser + U(lo, hi)."""
    ac, geyser = classic_levels(household, start_s, n, tz)
    other = rng.uniform(household.other_kw_low, household.other_kw_high, size=n)
    overall = household.base_kw + ac + geyser + other
    return ProfileBlock(start_s, ac, geyser, overall)


@lru_cache(maxsize=8)  # pure: the meters of a chunk ask for the same day (1 ms of divisions a meter-day)
def _hours(start_s: int, n: int, tz: ZoneInfo) -> IntArray:
    """Local hour of day of each second ``start_s .. start_s + n - 1`` (read-only: it is shared)."""
    hours = local_hours(np.arange(start_s, start_s + n, dtype=np.int64), tz)
    hours.flags.writeable = False
    return hours


def classic_levels(household: Household, start_s: int, n: int, tz: ZoneInfo) -> tuple[FloatArray, FloatArray]:
    """AC and Geyser kW of seconds ``start_s .. start_s + n - 1`` under the classic hourly schedule."""
    hours = _hours(start_s, n, tz)
    return (
        _schedule(hours, household.ac_hours, household.ac_kw),
        _schedule(hours, household.geyser_hours, household.geyser_kw),
    )


def classic_seconds(
    household: Household, start_s: int, n: int, tz: ZoneInfo, seed: int, meter_key: MeterKey
) -> ProfileBlock:
    """``n`` seconds from ``start_s`` with time-keyed randomness (see module docstring); any start, any length."""
    n = max(n, 0)
    ac, geyser = classic_levels(household, start_s, n, tz)
    other = day_keyed_uniform(seed, meter_key, start_s, n, household.other_kw_low, household.other_kw_high)
    return ProfileBlock(start_s, ac, geyser, household.base_kw + ac + geyser + other)


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
