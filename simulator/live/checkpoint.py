"""A meter's checkpoint and a run as the outbox keeps them, with the row format and the retention and cadence
settings (pure: no SQLite, no file; ``simulator.live.outbox`` is the SQLite shell).

Energy registers are stored as the bits of their doubles (``row_of``): exact through JSON and SQLite.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from simulator.meters.meter import MeterState

DEFAULT_RETENTION_S: Final = 7 * 86_400
# A fleet's default: replays and backlogs older than an hour are not served (a checkpoint is about 70 bytes a meter
# every CHECKPOINT_S; 10,000 meters keep about 250 MB for the hour).
FLEET_MODE_RETENTION_S: Final = 3600
MAX_RETENTION_S: Final = 366 * 86_400
CHECKPOINT_S: Final = 10.0  # wall seconds between two checkpoints of a meter...
CHECKPOINT_SLICES: Final = 10  # ...taken a slice of the fleet at a time (one transaction each)
HORIZON_LEAD_S: Final = 2.0  # the horizon is moved this many wall seconds (times the speed) ahead of the clock...
HORIZON_RENEW_S: Final = 1.0  # ...whenever less than this is left

_DOUBLE: Final = struct.Struct("<d")
_INT64: Final = struct.Struct("<q")


def _to_bits(value: float) -> int:
    """A double as the signed 64-bit integer of its bits: exact through JSON and SQLite (text floats may not be)."""
    return int(_INT64.unpack(_DOUBLE.pack(value))[0])


def _from_bits(bits: int) -> float:
    """The double whose bits ``_to_bits`` gave."""
    return float(_DOUBLE.unpack(_INT64.pack(bits))[0])


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A meter's state before its reading ``seq`` (``next_ts``: the second that reading may cover at the earliest)."""

    meter: str
    seq: int
    next_ts: int
    ac_kwh: float
    geyser_kwh: float
    overall_kwh: float
    acked_upto: int | None  # every seq up to this one was acknowledged (None: nothing ever was)
    run: int
    closed: bool = False  # written at a clean stop: nothing was produced past it

    @property
    def state(self) -> MeterState:
        """The meter's state at this checkpoint."""
        return MeterState(self.meter, self.seq, self.next_ts, self.ac_kwh, self.geyser_kwh, self.overall_kwh)

    @classmethod
    def of(cls, state: MeterState, acked_upto: int | None, run: int, *, closed: bool = False) -> Checkpoint:
        """The checkpoint of a meter's state."""
        return cls(
            state.meter_id,
            state.seq,
            state.next_ts,
            state.ac_kwh,
            state.geyser_kwh,
            state.overall_kwh,
            acked_upto,
            run,
            closed,
        )


@dataclass(frozen=True, slots=True)
class Run:
    """One simulator process's settings (``model``, opaque JSON) and horizon (simulated epoch seconds)."""

    run: int
    model: str
    horizon: int


COLUMNS: Final = "meter, seq, next_ts, ac_bits, geyser_bits, overall_bits, acked_upto, run, closed"


def row_of(checkpoint: Checkpoint, run: int | None = None) -> tuple[str, int, int, int, int, int, int | None, int, int]:
    """The row of ``COLUMNS`` of a checkpoint (energy registers as their bits), of run ``run`` if given."""
    c = checkpoint
    return (
        c.meter,
        c.seq,
        c.next_ts,
        _to_bits(c.ac_kwh),
        _to_bits(c.geyser_kwh),
        _to_bits(c.overall_kwh),
        c.acked_upto,
        c.run if run is None else run,
        int(c.closed),
    )


def checkpoint_of_row(row: Sequence[object]) -> Checkpoint:
    """The checkpoint of a row of ``COLUMNS`` (energy registers as their bits)."""
    meter, seq, next_ts, ac, gy, ov, acked, run, closed = row
    return Checkpoint(
        str(meter),
        int(seq),  # type: ignore[call-overload]
        int(next_ts),  # type: ignore[call-overload]
        _from_bits(int(ac)),  # type: ignore[call-overload]
        _from_bits(int(gy)),  # type: ignore[call-overload]
        _from_bits(int(ov)),  # type: ignore[call-overload]
        None if acked is None else int(acked),  # type: ignore[call-overload]
        int(run),  # type: ignore[call-overload]
        bool(closed),
    )
