"""The named profiles (``PROFILES``: classic, realistic) and ``make_profile``, which makes one for a meter (pure).

The realistic physics is imported only when a realistic profile is made: a classic fleet or dataset never loads it.
"""

from __future__ import annotations

from collections.abc import Callable
from zoneinfo import ZoneInfo

from config.errors import ConfigError
from config.households import household
from config.settings import CLIMATE_NAMES, DEFAULT_CLIMATE
from simulator.profiles.block import MeterProfile
from simulator.profiles.classic import ClassicProfile
from simulator.profiles.spec import MeterSpec

ProfileFactory = Callable[[MeterSpec, ZoneInfo, int, str], MeterProfile]


def _classic(spec: MeterSpec, tz: ZoneInfo, seed: int, climate: str) -> MeterProfile:
    return ClassicProfile(household(spec.template), tz, seed, spec.key)  # the original knew no climate


def _realistic(spec: MeterSpec, tz: ZoneInfo, seed: int, climate: str) -> MeterProfile:
    # Imported here: the realistic physics (eight modules) is not loaded by a classic fleet or dataset.
    from config.realistic import CLIMATES
    from simulator.profiles.realistic import realistic_profile

    return realistic_profile(spec, tz, seed, CLIMATES[climate])


PROFILES: dict[str, ProfileFactory] = {"classic": _classic, "realistic": _realistic}


def make_profile(name: str, spec: MeterSpec, tz: ZoneInfo, seed: int, climate: str = DEFAULT_CLIMATE) -> MeterProfile:
    """The named profile (``classic`` or ``realistic``) for one meter; ``climate`` is a key of ``CLIMATES``."""
    factory = PROFILES.get(name)
    if factory is None:
        raise ConfigError("profile", f"unknown profile {name!r} (known: {', '.join(sorted(PROFILES))})")
    if climate not in CLIMATE_NAMES:
        raise ConfigError("climate", f"unknown climate {climate!r} (known: {', '.join(CLIMATE_NAMES)})")
    return factory(spec, tz, seed, climate)
