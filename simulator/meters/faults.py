"""Error injection with ground truth: the faulted values of a meter's channels plus, per value, what was done to it.

Pure: functions take the clean values (kW, one row per second, columns ``CHANNELS``) and a generator or the seed, and
return arrays. Row ``i`` of a block covers ``[start_s + i, start_s + i + 1)``.

Rate (``FaultConfig``): either every ``every_s`` seconds, counted from local midnight, every channel gets one error of a
random type (the original generator: rows 0, N, 2N, ... of each day), or each second and channel independently gets an
error with ``probability``. The type is drawn uniformly from ``types``:

- ``NEGATIVE``: ``-abs(v)``; ``SPIKE``: ``v * U(10, 100)``; ``MISSING``: NaN. These act on the clean value of their
  second, so an error on a zero value can be invisible (as in the original).
- ``STUCK``: the channel repeats the clean value of the second before the fault for a run of seconds drawn uniformly
  from ``stuck_s = (min, max)`` (a run drawn at a day's first second holds that second's own value). A later fault
  inside the run overrides its second; a later stuck fault restarts the run. Runs end at local midnight.
- ``DROPOUT``: no reading at all that second: a dropout drawn for any channel makes every channel of the second NaN
  with code ``DROPOUT`` (a meter publishes all channels in one message). Dropout overrides every other error. With
  ``every_s`` and ``k`` types, a faulted second is therefore a dropout with probability ``1 - (1 - 1/k) ** 3``.

Time-keyed: every draw of a meter's local day comes from ``rng_for(seed, Purpose.FAULTS, meter_key, day ordinal)``
over the whole day, so the errors of a second do not depend on where a caller starts (``faulted_seconds``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import IntEnum
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from config.errors import ConfigError
from simulator.localday import days_covering
from simulator.profiles.block import FloatArray, MeterProfile, ProfileBlock
from simulator.seeds import MeterKey, Purpose, rng_for

CHANNELS: Final = ("ac", "geyser", "overall")
SPIKE_FACTOR: Final = (10.0, 100.0)

CodeArray = npt.NDArray[np.int8]


class ErrorType(IntEnum):
    """What was done to one value (``NONE``: it is the clean value)."""

    NONE = 0
    NEGATIVE = 1
    SPIKE = 2
    MISSING = 3
    STUCK = 4
    DROPOUT = 5

    @property
    def label(self) -> str:
        """The lower-case name used in data files (``none``, ``negative``, ...)."""
        return self.name.lower()


ORIGINAL_TYPES: Final = (ErrorType.NEGATIVE, ErrorType.SPIKE, ErrorType.MISSING)
ALL_TYPES: Final = tuple(t for t in ErrorType if t is not ErrorType.NONE)


def parse_error_types(text: str, key: str = "--error-types") -> tuple[ErrorType, ...]:
    """Comma-separated error type names (or ``all``), e.g. ``negative,spike,missing``."""
    names = [part.strip().upper() for part in text.split(",") if part.strip()]
    if names == ["ALL"]:
        return ALL_TYPES
    try:
        types = tuple(ErrorType[name] for name in names)
    except KeyError as exc:
        known = ", ".join(t.label for t in ALL_TYPES)
        raise ConfigError(key, f"unknown error type {exc.args[0].lower()!r} (known: {known}, or all)") from exc
    return types


@dataclass(frozen=True, slots=True)
class FaultConfig:
    """How often and which errors to inject: exactly one of ``every_s`` and ``probability``."""

    every_s: int | None = None
    probability: float | None = None
    types: tuple[ErrorType, ...] = ORIGINAL_TYPES
    stuck_s: tuple[int, int] = (5, 60)  # run length of a STUCK fault, drawn uniformly from [min, max] seconds

    def __post_init__(self) -> None:
        if (self.every_s is None) == (self.probability is None):
            raise ConfigError("faults", "give exactly one of an error period (every_s) and an error probability")
        if self.every_s is not None and not 1 <= self.every_s <= 86_400:
            raise ConfigError("faults.every_s", f"must be 1-86400 seconds, got {self.every_s}")
        if self.probability is not None and not 0.0 < self.probability <= 1.0:
            raise ConfigError("faults.probability", f"must be > 0 and <= 1, got {self.probability}")
        if not self.types or ErrorType.NONE in self.types or len(set(self.types)) != len(self.types):
            raise ConfigError("faults.types", "give one or more distinct error types (not none)")
        low, high = self.stuck_s
        if not 1 <= low <= high:
            raise ConfigError("faults.stuck_s", f"need 1 <= min <= max, got {self.stuck_s}")


@dataclass(frozen=True, slots=True)
class FaultedBlock:
    """Clean and faulted values (kW, shape ``(n, 3)``, columns ``CHANNELS``) and the error code of each value."""

    start_s: int
    clean_kw: FloatArray
    values_kw: FloatArray
    codes: CodeArray


def stack(block: ProfileBlock) -> FloatArray:
    """A profile block as one ``(n, 3)`` array with columns ``CHANNELS``."""
    return np.column_stack([block.ac_kw, block.geyser_kw, block.overall_kw]).astype(np.float64, copy=False)


def inject(
    clean: FloatArray,
    start_s: int,
    config: FaultConfig,
    rng: np.random.Generator,
    out: tuple[FloatArray, CodeArray] | None = None,
) -> FaultedBlock:
    """Errors of one local day's clean values ``(n, 3)`` from its midnight ``start_s``; draws from ``rng`` in order.

    ``out``: arrays of the same shape to write the faulted values and codes into (a chunk's rows: no copy later)."""
    n, width = clean.shape
    if config.every_s is not None:
        rows = np.repeat(np.arange(0, n, config.every_s), width)
        cols = np.tile(np.arange(width), len(rows) // width)
    else:
        probability = 0.0 if config.probability is None else config.probability
        rows, cols = np.nonzero(rng.random((n, width)) < probability)
    kinds = np.asarray(config.types, dtype=np.int8)[rng.integers(0, len(config.types), size=len(rows))]
    factors = rng.uniform(*SPIKE_FACTOR, size=len(rows))
    runs = rng.integers(config.stuck_s[0], config.stuck_s[1] + 1, size=len(rows))

    if out is None:
        values, codes = clean.copy(), np.zeros((n, width), dtype=np.int8)
    else:
        values, codes = out
        values[...] = clean
        codes[...] = 0
    stuck = kinds == ErrorType.STUCK
    for col in range(width):
        mine = stuck & (cols == col)
        _hold(clean[:, col], values[:, col], codes[:, col], rows[mine], runs[mine])
    for kind in (ErrorType.NEGATIVE, ErrorType.SPIKE, ErrorType.MISSING):
        hit = kinds == kind
        r, c = rows[hit], cols[hit]
        if kind is ErrorType.NEGATIVE:
            values[r, c] = -np.abs(clean[r, c])
        elif kind is ErrorType.SPIKE:
            values[r, c] = clean[r, c] * factors[hit]
        else:
            values[r, c] = np.nan
        codes[r, c] = kind
    dropped = rows[kinds == ErrorType.DROPOUT]  # a row twice is set twice to the same (np.unique would import numpy.ma)
    values[dropped, :] = np.nan
    codes[dropped, :] = ErrorType.DROPOUT
    return FaultedBlock(start_s, clean, values, codes)


def _hold(
    clean: FloatArray, values: FloatArray, codes: CodeArray, starts: npt.NDArray[np.intp], runs: npt.NDArray[np.int64]
) -> None:
    """Paint STUCK runs of one channel in place; ``starts`` ascending, a later start ends the run before it."""
    if starts.size == 0:
        return
    seconds = np.arange(len(clean))
    run = np.searchsorted(starts, seconds, side="right") - 1
    started = run >= 0
    run = np.maximum(run, 0)
    covered = started & (seconds < starts[run] + runs[run])
    held_row = np.maximum(starts[run] - 1, 0)
    values[covered] = clean[held_row[covered]]
    codes[covered] = ErrorType.STUCK


def fault_day(
    clean: FloatArray,
    config: FaultConfig,
    seed: int,
    meter_key: MeterKey,
    day: date,
    start_s: int,
    out: tuple[FloatArray, CodeArray] | None = None,
) -> FaultedBlock:
    """Errors of one meter's whole local ``day`` (clean values from its local midnight ``start_s``; ``out``: see
    ``inject``)."""
    return inject(clean, start_s, config, rng_for(seed, Purpose.FAULTS, meter_key, day.toordinal()), out)


def faulted_seconds(
    profile: MeterProfile, start_s: int, n: int, tz: ZoneInfo, config: FaultConfig, seed: int, meter_key: MeterKey
) -> FaultedBlock:
    """Clean and faulted values of seconds ``[start_s, start_s + n)``, computed day by day (any start, any length)."""
    parts: list[FaultedBlock] = []
    for day, day_start, day_end in days_covering(start_s, n, tz):
        whole = fault_day(stack(profile.block(day_start, day_end - day_start)), config, seed, meter_key, day, day_start)
        window = slice(max(start_s, day_start) - day_start, min(start_s + n, day_end) - day_start)
        parts.append(FaultedBlock(start_s, whole.clean_kw[window], whole.values_kw[window], whole.codes[window]))
    return concat(parts, start_s)


def concat(parts: Iterable[FaultedBlock], start_s: int) -> FaultedBlock:
    """Consecutive blocks as one block starting at ``start_s``."""
    blocks = list(parts)
    if not blocks:
        empty = np.zeros((0, len(CHANNELS)), dtype=np.float64)
        return FaultedBlock(start_s, empty, empty.copy(), np.zeros((0, len(CHANNELS)), dtype=np.int8))
    return FaultedBlock(
        start_s,
        np.concatenate([b.clean_kw for b in blocks]),
        np.concatenate([b.values_kw for b in blocks]),
        np.concatenate([b.codes for b in blocks]),
    )


LABELS: Final = tuple(t.label for t in ErrorType)  # LABELS[code] is the code's file label
