"""The meters of one simulator process: who they are (``MeterSpec``), what they draw (a ``MeterProfile``) and their
state, stepped by simulated time.

No I/O and no clock: ``Meter.due(sim_now)`` returns the readings whose second has fully passed at ``sim_now``.

Meter ids: the classic households are ``A``, ``B``, ``C``; fleet members are ``<household>-<member>``, e.g. ``A-0007``,
spread round-robin over the requested households. A member's seed key is ``(household index, member)``, so a fleet's
meters keep their data when the fleet grows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from config.errors import ConfigError
from config.households import household, seed_index
from config.wire import Reading
from simulator.meter import MeterState, step
from simulator.profiles import BLOCK_S, ClassicProfile, MeterProfile, ProfileBlock
from simulator.seeds import MeterKey

MAX_FLEET = 100_000


@dataclass(frozen=True, slots=True)
class MeterSpec:
    """One meter of a fleet: its wire id, its household template and its seed key."""

    meter_id: str
    template: str
    key: MeterKey


def fleet_specs(households: Sequence[str], fleet_size: int | None = None) -> list[MeterSpec]:
    """The classic households themselves, or ``fleet_size`` members spread round-robin over them."""
    templates = [household(h).id for h in households]
    if len(set(templates)) != len(templates):
        raise ConfigError("households", "a household is given twice")
    if fleet_size is None:
        return [MeterSpec(t, t, (seed_index(t),)) for t in templates]
    if not 1 <= fleet_size <= MAX_FLEET:
        raise ConfigError("fleet", f"fleet size must be 1-{MAX_FLEET}, got {fleet_size}")
    specs = []
    for n in range(fleet_size):
        template = templates[n % len(templates)]
        member = n // len(templates) + 1
        specs.append(MeterSpec(f"{template}-{member:04d}", template, (seed_index(template), member)))
    return specs


ProfileFactory = Callable[[MeterSpec, ZoneInfo, int], MeterProfile]


def _classic(spec: MeterSpec, tz: ZoneInfo, seed: int) -> MeterProfile:
    return ClassicProfile(household(spec.template), tz, seed, spec.key)


PROFILES: dict[str, ProfileFactory] = {"classic": _classic}


def make_profile(name: str, spec: MeterSpec, tz: ZoneInfo, seed: int) -> MeterProfile:
    """The named profile (``classic``, ...) for one meter."""
    factory = PROFILES.get(name)
    if factory is None:
        raise ConfigError("profile", f"unknown profile {name!r} (known: {', '.join(sorted(PROFILES))})")
    return factory(spec, tz, seed)


@dataclass(slots=True)
class Meter:
    """One simulated meter: its spec, its profile, its state and the cached profile block."""

    spec: MeterSpec
    profile: MeterProfile
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
            block = self.profile.block(ts - ts % BLOCK_S, BLOCK_S)
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


def build_meters(
    specs: Sequence[MeterSpec], seed: int, tz: ZoneInfo, sim_start: float, profile: str = "classic"
) -> list[Meter]:
    """Meters for these specs, each starting at the second containing ``sim_start``."""
    first_ts = math.floor(sim_start)
    return [
        Meter(spec, make_profile(profile, spec, tz, seed), MeterState(meter_id=spec.meter_id, seq=0, next_ts=first_ts))
        for spec in specs
    ]
