"""What every load profile gives: a block of per-second power of the three channels (``ProfileBlock``, kW) for any
stretch of seconds of one meter (``MeterProfile``); pure.

Sample ``i`` of a block covers the simulated second ``[start_s + i, start_s + i + 1)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Protocol

import numpy as np
import numpy.typing as npt

BLOCK_S: Final = 60  # the live meter asks its profile for this many seconds at a time

FloatArray = npt.NDArray[np.float64]


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
