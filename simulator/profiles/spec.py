"""Which meter a profile is made for: ``MeterSpec``, its wire id, household template and seed key (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from simulator.seeds import MeterKey


@dataclass(frozen=True, slots=True)
class MeterSpec:
    """One meter of a fleet: its wire id, its household template and its seed key."""

    meter_id: str
    template: str
    key: MeterKey
