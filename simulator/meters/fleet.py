"""The meters of one simulator process: who they are (``MeterSpec``), what they draw (a ``MeterProfile``) and their
state, stepped by simulated time.

No I/O and no clock: ``Meter.due(sim_now)`` returns the readings whose second has fully passed at ``sim_now``.

Meter ids: the classic households are ``A``, ``B``, ``C``; fleet members are ``<household>-<member>``, e.g. ``A-0007``,
spread round-robin over the requested households. A member's seed key is ``(household index, member)``, so a fleet's
meters keep their data when the fleet grows.
"""

from __future__ import annotations

import math
import zlib
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from config.errors import ConfigError
from config.households import household, seed_index
from config.localtime import local_date
from config.settings import DEFAULT_CLIMATE
from config.wire import Reading
from simulator.localday import day_span
from simulator.meters.faults import ErrorType, FaultConfig, faulted_seconds, stack
from simulator.meters.meter import MeterState, skip, step
from simulator.profiles.block import BLOCK_S, FloatArray, MeterProfile
from simulator.profiles.factory import make_profile
from simulator.profiles.spec import MeterSpec

MAX_FLEET = 100_000


def fleet_specs(households: Sequence[str], fleet_size: int | None = None, offset: int = 0) -> list[MeterSpec]:
    """The classic households themselves, or ``fleet_size`` members spread round-robin over them.

    ``offset`` skips the first members of that order, so that hosts can share one fleet: ``--fleet 5000`` and
    ``--fleet 5000 --fleet-offset 5000`` together are exactly the meters (ids, keys, values) of ``--fleet 10000``.
    """
    templates = [household(h).id for h in households]
    if len(set(templates)) != len(templates):
        raise ConfigError("households", "a household is given twice")
    if fleet_size is None:
        if offset:
            raise ConfigError("fleet-offset", "an offset needs a fleet size")
        return [MeterSpec(t, t, (seed_index(t),)) for t in templates]
    if not 1 <= fleet_size <= MAX_FLEET:
        raise ConfigError("fleet", f"fleet size must be 1-{MAX_FLEET}, got {fleet_size}")
    if not 0 <= offset <= MAX_FLEET - fleet_size:
        raise ConfigError("fleet-offset", f"offset + fleet size must be 0-{MAX_FLEET}, got {offset} + {fleet_size}")
    specs = []
    for n in range(offset, offset + fleet_size):
        template = templates[n % len(templates)]
        member = n // len(templates) + 1
        specs.append(MeterSpec(f"{template}-{member:04d}", template, (seed_index(template), member)))
    return specs


def spec_of(meter_id: str) -> MeterSpec:
    """The spec of a meter by its id (``A`` or a fleet member such as ``A-0007``), as ``fleet_specs`` makes it."""
    template, _, member = meter_id.partition("-")
    if not member:
        return MeterSpec(meter_id, household(template).id, (seed_index(template),))
    if not member.isdigit() or int(member) < 1:
        raise ConfigError("meter", f"not a fleet member's id: {meter_id!r}")
    return MeterSpec(meter_id, household(template).id, (seed_index(template), int(member)))


@dataclass(frozen=True, slots=True)
class Frame:
    """Seconds ``start_s ..`` of a meter: true power, reported power (NaN = no value) and dropouts, kW."""

    start_s: int
    true_kw: FloatArray
    reported_kw: FloatArray
    dropout: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return len(self.true_kw)


@dataclass(frozen=True, slots=True)
class Injection:
    """Errors a live meter injects into what it reports (``None`` on a meter means none)."""

    config: FaultConfig
    tz: ZoneInfo
    seed: int


Rows = tuple[int, "array[float]", "array[float]", bytes]  # start second, true kW, reported kW (NaN: none), dropouts
PREFETCH_SPREAD_S: Final = BLOCK_S - 10  # a meter makes its next minute at second crc32(id) % this of the current one


def _value(kw: float) -> float | None:
    return None if math.isnan(kw) else kw


@dataclass(slots=True)
class Meter:
    """One simulated meter: its spec, its profile, its state, optional error injection and the cached frame."""

    spec: MeterSpec
    profile: MeterProfile
    state: MeterState
    injection: Injection | None = None
    _frame: Frame | None = field(default=None, repr=False)
    # The current minute of the frame as flat arrays: reading three numpy scalars per second cost more than the rest of
    # a step, and Python tuples per second cost 20 KB per meter.
    _rows: Rows | None = field(default=None, repr=False)
    # The next minute, made ahead at a second of the minute that depends on the meter (``prefetch_s``): made at the
    # minute's first second, every meter of a 10,000-meter fleet would need its next minute in the same step (seconds
    # of work at once, every minute: readings late by that much).
    _next_rows: Rows | None = field(default=None, repr=False)
    prefetch_s: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        self.prefetch_s = zlib.crc32(self.state.meter_id.encode()) % PREFETCH_SPREAD_S

    @property
    def meter_id(self) -> str:
        """The meter's id on the wire."""
        return self.state.meter_id

    def next_due_sim(self) -> float:
        """Simulated time at which the next reading is complete (the end of its second)."""
        return float(self.state.next_ts + 1)

    def _frame_at(self, ts: int) -> Frame:
        frame = self._frame
        if frame is not None and frame.start_s <= ts < frame.start_s + len(frame):
            return frame
        if self.injection is None:  # a minute at a time
            block = stack(self.profile.block(ts - ts % BLOCK_S, BLOCK_S))
            frame = Frame(ts - ts % BLOCK_S, block, block, np.zeros(len(block), dtype=bool))
        else:  # errors are drawn per local day: the meter's whole day at once
            inj = self.injection
            start, end = day_span(local_date(ts, inj.tz), inj.tz)
            faulted = faulted_seconds(self.profile, start, end - start, inj.tz, inj.config, inj.seed, self.spec.key)
            dropout = np.any(faulted.codes == ErrorType.DROPOUT, axis=1)
            frame = Frame(start, faulted.clean_kw, faulted.values_kw, dropout)
        self._frame = frame
        return frame

    def _rows_at(self, ts: int) -> Rows:
        """The minute of the frame holding ``ts`` (at most ``BLOCK_S`` seconds, within the frame) as flat arrays of
        Python doubles (3 per second: AC, Geyser, Overall kW) and dropout flags."""
        frame = self._frame_at(ts)
        lo = ts - frame.start_s
        lo -= lo % BLOCK_S
        hi = min(lo + BLOCK_S, len(frame))
        true_kw = array("d", frame.true_kw[lo:hi].ravel().tolist())
        reported = (
            true_kw if frame.reported_kw is frame.true_kw else array("d", frame.reported_kw[lo:hi].ravel().tolist())
        )
        return frame.start_s + lo, true_kw, reported, bytes(frame.dropout[lo:hi])

    def _current_rows(self, ts: int) -> Rows:
        rows = self._rows
        if rows is not None and rows[0] <= ts < rows[0] + len(rows[3]):
            return rows
        ahead = self._next_rows
        self._next_rows = None
        if ahead is not None and ahead[0] <= ts < ahead[0] + len(ahead[3]):
            self._rows = ahead
        else:
            self._rows = self._rows_at(ts)
        return self._rows

    def due(self, sim_now: float, limit: int) -> list[Reading]:
        """Readings of every second that ended at or before ``sim_now``, oldest first, at most ``limit``.

        A dropout second publishes nothing (its ``ts`` is simply absent); it still counts against ``limit``.
        """
        readings: list[Reading] = []
        for _ in range(limit):
            ts = self.state.next_ts
            if ts + 1 > sim_now:
                break
            start, true_flat, reported_flat, dropped = self._current_rows(ts)
            i = ts - start
            if i >= self.prefetch_s and self._next_rows is None:
                self._next_rows = self._rows_at(start + len(dropped))
            j = 3 * i
            true_kw = (true_flat[j], true_flat[j + 1], true_flat[j + 2])
            if dropped[i]:
                self.state = skip(self.state, true_kw)
                continue
            if reported_flat is true_flat:  # nothing injected: what is reported is the truth
                self.state, reading = step(self.state, *true_kw, true_kw)
            else:
                ac, geyser, overall = reported_flat[j], reported_flat[j + 1], reported_flat[j + 2]
                self.state, reading = step(self.state, _value(ac), _value(geyser), _value(overall), true_kw)
            readings.append(reading)
        return readings


def build_meters(
    specs: Sequence[MeterSpec],
    seed: int,
    tz: ZoneInfo,
    sim_start: float,
    profile: str = "classic",
    climate: str = DEFAULT_CLIMATE,
    faults: FaultConfig | None = None,
    resume: Mapping[str, MeterState] | None = None,
) -> list[Meter]:
    """Meters for these specs, each starting at the second containing ``sim_start``, with optional errors.

    A meter in ``resume`` (its state after everything its last run may have published, ``simulator.live.reproduce``)
    continues from it: the same seq and registers, and never a second before its ``next_ts``.
    """
    first_ts = math.floor(sim_start)
    injection = None if faults is None else Injection(faults, tz, seed)
    meters = []
    for spec in specs:
        last = (resume or {}).get(spec.meter_id)
        if last is None:
            state = MeterState(meter_id=spec.meter_id, seq=0, next_ts=first_ts)
        else:
            state = MeterState(
                spec.meter_id, last.seq, max(first_ts, last.next_ts), last.ac_kwh, last.geyser_kwh, last.overall_kwh
            )
        meters.append(Meter(spec, make_profile(profile, spec, tz, seed, climate), state, injection))
    return meters
