"""The fleet's seed tree: every random draw comes from ``SeedSequence(seed, spawn_key=(purpose, *meter_key, *when))``.

A meter's key is ``(household index,)`` for the classic households A, B, C and ``(household index, member)`` for fleet
members such as ``A-0007`` (member 7), so adding meters to a fleet never changes another meter's draws. ``when`` ties a
draw to simulated time (a minute, a day), not to call order: a live meter, a restarted meter and the batch generator
get the same numbers for the same simulated second. The purpose, first in the key, keeps the streams apart.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

MeterKey = tuple[int, ...]


class Purpose(IntEnum):
    """What a stream of random numbers is for."""

    NOISE = 0  # per-second draws of a profile, keyed by minute
    DAY = 1  # a day's events (draws, appliance runs, thermostat jitter), keyed by local day ordinal
    DIVERSITY = 2  # a fleet member's parameters, drawn once
    FAULTS = 3  # injected errors, keyed by local day ordinal
    DAY_NOISE = 4  # per-second measurement noise of day-based profiles (realistic), keyed by local day ordinal


def rng_for(seed: int, purpose: Purpose, meter_key: MeterKey, *when: int) -> np.random.Generator:
    """The generator of one purpose, one meter and (optionally) one stretch of simulated time."""
    key = (int(purpose), *meter_key, *when)
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))
