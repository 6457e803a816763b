"""Household definitions of the classic profile (the original system's three homes).

Units: power in kW, hours are local hours of the fleet's time zone, blocks are half-open ``[start, end)``, so an
appliance switches exactly on the hour, as the original generator did (``lo <= hour < hi``).
"""

from __future__ import annotations

from dataclasses import dataclass

from config.errors import ConfigError

HourBlock = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Household:
    """One household template: who lives there and when its appliances run."""

    id: str
    description: str
    ac_kw: float
    ac_hours: tuple[HourBlock, ...]
    geyser_kw: float
    geyser_hours: tuple[HourBlock, ...]
    base_kw: float = 0.5
    other_kw_low: float = 0.1
    other_kw_high: float = 1.0

    def __post_init__(self) -> None:
        for start, end in (*self.ac_hours, *self.geyser_hours):
            if not 0 <= start < end <= 24:
                raise ConfigError(f"households.{self.id}", f"bad hour block [{start}, {end})")
        if self.ac_kw < 0 or self.geyser_kw < 0 or self.base_kw < 0:
            raise ConfigError(f"households.{self.id}", "levels must be >= 0 kW")
        if not 0 <= self.other_kw_low <= self.other_kw_high:
            raise ConfigError(f"households.{self.id}", "other_kw_low must be <= other_kw_high")

    def ac_on(self, hour: int) -> bool:
        """Whether the AC runs in this local hour (0-23) under the classic schedule."""
        return any(start <= hour < end for start, end in self.ac_hours)

    def geyser_on(self, hour: int) -> bool:
        """Whether the geyser runs in this local hour (0-23) under the classic schedule."""
        return any(start <= hour < end for start, end in self.geyser_hours)


# The original schedules, exactly (seed-behaviour section 1).
CLASSIC: dict[str, Household] = {
    "A": Household("A", "day worker's home", 1.5, ((0, 7), (18, 23)), 3.0, ((6, 8), (18, 20))),
    "B": Household("B", "office", 2.0, ((9, 17),), 0.0, ()),
    "C": Household("C", "shift worker's home", 1.5, ((22, 24), (0, 6), (10, 14)), 3.0, ((5, 7), (21, 23))),
}

# Order fixes each household's seed stream: SeedSequence(seed, spawn_key=(index,)) is spawn(n)[index].
CLASSIC_ORDER: tuple[str, ...] = ("A", "B", "C")


def household(household_id: str) -> Household:
    """The classic household with this id (case-insensitive); ConfigError if unknown."""
    found = CLASSIC.get(household_id.upper())
    if found is None:
        raise ConfigError("household", f"unknown household {household_id!r}; known: {', '.join(CLASSIC_ORDER)}")
    return found


def seed_index(household_id: str) -> int:
    """The household's position in the fleet's seed order."""
    return CLASSIC_ORDER.index(household(household_id).id)
