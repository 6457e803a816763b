"""The batch generator's pure core: what a dataset is (``DatasetPlan``) and its data, a local day and a few meters at a
time (``chunks``), so memory is bounded by one chunk whatever the number of meters and days.

Units: power in kW, shape ``(meters, seconds, 3)`` with columns ``faults.CHANNELS``. A chunk covers one local day of the
fleet's time zone, ``[local midnight, next local midnight)`` (23 or 25 hours on a DST change), for consecutive meters
of the fleet in spec order. Chunks come day by day, then meter group by meter group. A meter's data come from its
profile (``profile.block``) and its errors from ``faults.fault_day``: both keyed by simulated time, so a chunk equals
the same seconds computed any other way (one shot, another chunk size, a live meter).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np

from config.errors import ConfigError
from config.households import CLASSIC_ORDER
from config.settings import DEFAULT_CLIMATE, parse_tz
from simulator.localday import day_span
from simulator.meters.faults import CHANNELS, CodeArray, FaultConfig, fault_day
from simulator.meters.fleet import fleet_specs
from simulator.profiles.block import FloatArray
from simulator.profiles.factory import PROFILES, make_profile
from simulator.profiles.spec import MeterSpec

LAYOUTS: Final = ("tidy", "seed")
FORMATS: Final = ("csv", "parquet")
MAX_DAYS: Final = 3660
DEFAULT_START_DATE: Final = date(2024, 1, 1)  # fixed, so the same command line always writes the same data
DEFAULT_METERS_PER_CHUNK: Final = 8  # tidy: 8 meter-days = 691,200 rows per chunk


@dataclass(frozen=True, slots=True)
class DatasetPlan:
    """Everything that determines a generated dataset; validates itself (``ConfigError``)."""

    days: int = 1
    households: tuple[str, ...] = CLASSIC_ORDER
    fleet_size: int | None = None
    profile: str = "classic"
    climate: str = DEFAULT_CLIMATE
    tz: str = "UTC"
    seed: int = 0
    start_date: date = DEFAULT_START_DATE
    faults: FaultConfig | None = None
    layout: str = "tidy"
    fmt: str = "csv"
    meters_per_chunk: int = DEFAULT_METERS_PER_CHUNK

    def __post_init__(self) -> None:
        if not 1 <= self.days <= MAX_DAYS:
            raise ConfigError("days", f"must be 1-{MAX_DAYS}, got {self.days}")
        if self.profile not in PROFILES:
            raise ConfigError("profile", f"unknown profile {self.profile!r} (known: {', '.join(sorted(PROFILES))})")
        parse_tz(self.tz, "tz")
        if not 0 <= self.seed < 2**63:
            raise ConfigError("seed", f"must be 0 to 2**63-1, got {self.seed}")
        if self.layout not in LAYOUTS:
            raise ConfigError("layout", f"unknown layout {self.layout!r} (known: {', '.join(LAYOUTS)})")
        if self.fmt not in FORMATS:
            raise ConfigError("format", f"unknown format {self.fmt!r} (known: {', '.join(FORMATS)})")
        if self.meters_per_chunk < 1:
            raise ConfigError("meters_per_chunk", f"must be >= 1, got {self.meters_per_chunk}")
        if self.layout == "seed" and self.fleet_size is not None:
            raise ConfigError(
                "layout", "the seed layout has columns for the classic households A, B, C only (no fleet)"
            )
        if self.layout == "seed" and self.fmt != "csv":
            raise ConfigError("format", "the seed layout is the original CSV; use the tidy layout for parquet")
        self.specs()  # households and fleet size

    def zone(self) -> ZoneInfo:
        """The fleet's time zone."""
        return ZoneInfo(self.tz)

    def specs(self) -> list[MeterSpec]:
        """The dataset's meters in file order (the seed layout: A, B, C order, as the original's columns)."""
        specs = fleet_specs(self.households, self.fleet_size)
        return sorted(specs, key=lambda spec: spec.key) if self.layout == "seed" else specs

    def group_size(self) -> int:
        """Meters per chunk (the seed layout's wide rows need every meter of a second in one chunk)."""
        return len(self.specs()) if self.layout == "seed" else self.meters_per_chunk

    def chunk_count(self) -> int:
        """How many chunks ``chunks(plan)`` yields."""
        return self.days * math.ceil(len(self.specs()) / self.group_size())

    def origin_s(self) -> int:
        """Epoch second of the first local midnight (row 0 of the seed layout)."""
        return day_span(self.start_date, self.zone())[0]


@dataclass(frozen=True, slots=True)
class Chunk:
    """One local day of a group of meters: clean values and, with faults, the faulted values and their error codes."""

    day: date
    start_s: int
    meter_ids: tuple[str, ...]
    clean_kw: FloatArray
    values_kw: FloatArray | None
    codes: CodeArray | None

    @property
    def seconds(self) -> int:
        """Seconds in this chunk's day (86,400 but on DST changes)."""
        return int(self.clean_kw.shape[1])


def chunks(plan: DatasetPlan) -> Iterator[Chunk]:
    """The dataset's data, day by day, then ``plan.group_size()`` meters at a time."""
    zone = plan.zone()
    specs = plan.specs()
    profiles = [make_profile(plan.profile, spec, zone, plan.seed, plan.climate) for spec in specs]
    size = plan.group_size()
    for offset in range(plan.days):
        day = plan.start_date + timedelta(days=offset)
        start, end = day_span(day, zone)
        for first in range(0, len(specs), size):
            group = specs[first : first + size]
            clean = np.empty((len(group), end - start, len(CHANNELS)), dtype=np.float64)
            for i, profile in enumerate(profiles[first : first + size]):  # each block's columns stored in place
                block = profile.block(start, end - start)
                clean[i, :, 0], clean[i, :, 1], clean[i, :, 2] = block.ac_kw, block.geyser_kw, block.overall_kw
            ids = tuple(spec.meter_id for spec in group)
            if plan.faults is None:
                yield Chunk(day, start, ids, clean, None, None)
                continue
            values = np.empty_like(clean)
            codes = np.empty(clean.shape, dtype=np.int8)
            for i, spec in enumerate(group):  # each meter's faults written in place (no stack of copies)
                fault_day(clean[i], plan.faults, plan.seed, spec.key, day, start, out=(values[i], codes[i]))
            yield Chunk(day, start, ids, clean, values, codes)
