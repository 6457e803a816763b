"""Outdoor temperature, daylight and mains water temperature of one local day.

Units: temperatures in deg C, hours in h, times in elapsed seconds of the local day (``simulator.localday``).
The day is cut into slots of ``SLOT_S`` seconds; the physics holds each slot's inputs constant.

- Season: ``annual_mean + amplitude * cos(2 pi (day - hottest) / 365.2425)``, continuous across midnights and years.
- Daily cycle: minimum at sunrise, maximum ``max_after_noon_h`` after solar noon, two half-cosines between them.
  Solar time follows the fleet's clock: solar noon is at 12:00 + ``solar_noon_delay_h`` + the DST offset.
- Weather: the daily mean's anomaly at each local midnight is a moving average of four daily N(0, 1) draws
  (lag-1 correlation 0.75), scaled by ``weather_sd_k`` and interpolated linearly through the day. The draws are the
  fleet's, not a meter's: ``rng_for(seed, Purpose.DAY, (), ordinal)`` (the empty meter key is the fleet's weather).
- Daylight: sunrise and sunset from the solar declination (Cooper 1969) and the latitude.
- Mains water: DOE/NREL (Burch & Christensen 2007; Building America House Simulation Protocols): annual mean + 3.3 K +
  ratio * amplitude, ratio = 0.4 + 0.01 (mean_F - 44), lagging the air by 35 - (mean_F - 44) days (at least 0).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Final

import numpy as np

from config.realistic import Climate
from simulator.localday import LocalDay
from simulator.profiles.signals import FloatArray, IntArray, Ramp
from simulator.seeds import Purpose, rng_for

SLOT_S: Final = 900
_YEAR_D: Final = 365.2425
_EPOCH_ORDINAL: Final = 730_120  # 2000-01-01: day 0 of the seasonal phase
_MA_WEIGHTS: Final = (0.5, 0.5, 0.5, 0.5)  # unit variance, lag-1 correlation 0.75


@functools.lru_cache(maxsize=512)
def _weather_draw(seed: int, ordinal: int) -> float:
    return float(rng_for(seed, Purpose.DAY, (), ordinal).standard_normal())


def midnight_anomaly_k(climate: Climate, seed: int, ordinal: int) -> float:
    """Anomaly (K) of the outdoor temperature at the local midnight that starts day ``ordinal``."""
    total = sum(w * _weather_draw(seed, ordinal - lag) for lag, w in enumerate(_MA_WEIGHTS))
    return climate.weather_sd_k * total


def season_c(climate: Climate, day: FloatArray) -> FloatArray:
    """Seasonal mean temperature at ``day`` (days since 2000-01-01, fractional)."""
    phase = 2.0 * np.pi * (day - (climate.hottest_day_of_year - 1)) / _YEAR_D
    return climate.annual_mean_c + climate.seasonal_amplitude_k * np.cos(phase)


def sun_hours(latitude_deg: float, ordinal: int) -> tuple[float, float]:
    """Sunrise and sunset in local solar hours on day ``ordinal`` (0 and 24 in polar day, 12 and 12 in polar night)."""
    day_of_year = (ordinal - _EPOCH_ORDINAL) % _YEAR_D + 1.0
    declination = math.radians(23.44) * math.sin(2.0 * math.pi * (284.0 + day_of_year) / 365.0)
    cos_w = -math.tan(math.radians(latitude_deg)) * math.tan(declination)
    half_day_h = math.degrees(math.acos(min(1.0, max(-1.0, cos_w)))) / 15.0
    return 12.0 - half_day_h, 12.0 + half_day_h


def inlet_c(climate: Climate, ordinal: int) -> float:
    """Mains (cold) water temperature on day ``ordinal``."""
    mean_f = climate.annual_mean_c * 9.0 / 5.0 + 32.0
    ratio = 0.4 + 0.01 * (mean_f - 44.0)
    lag_d = max(0.0, 35.0 - (mean_f - 44.0))
    day = float(ordinal - _EPOCH_ORDINAL) - lag_d
    phase = 2.0 * math.pi * (day - (climate.hottest_day_of_year - 1)) / _YEAR_D
    return climate.annual_mean_c + 3.3 + ratio * climate.seasonal_amplitude_k * math.cos(phase)


def diurnal_k(solar_h: FloatArray, sunrise_h: float, max_h: float, range_k: float) -> FloatArray:
    """Deviation from the daily mean at solar hours ``solar_h``: min at sunrise, max at ``max_h``."""
    h = np.mod(solar_h, 24.0)
    rising = (h >= sunrise_h) & (h < max_h)
    after = np.where(h >= max_h, h, h + 24.0)
    up = -np.cos(np.pi * (h - sunrise_h) / (max_h - sunrise_h))
    down = np.cos(np.pi * (after - max_h) / (sunrise_h + 24.0 - max_h))
    return 0.5 * range_k * np.where(rising, up, down)


@functools.lru_cache(maxsize=128)  # pure: shared by every meter of a fleet on the same day
def slot_weather(climate: Climate, local: LocalDay, seed: int, lag_s: int = 0) -> tuple[FloatArray, FloatArray]:
    """Outdoor temperature and sun (0 at night, 1 at solar noon) of each slot, ``lag_s`` seconds before its midpoint."""
    n = local.n_s
    at = np.arange(0, n, SLOT_S, dtype=np.float64) + SLOT_S / 2.0 - lag_s
    frac = at / n
    ordinal = local.ordinal
    m0 = midnight_anomaly_k(climate, seed, ordinal)
    m1 = midnight_anomaly_k(climate, seed, ordinal + 1)
    sunrise, sunset = sun_hours(climate.latitude_deg, ordinal)
    solar_h = np.mod(local.wall_h(at) - local.dst_h(at) - climate.solar_noon_delay_h, 24.0)
    max_h = 12.0 + climate.max_after_noon_h
    outdoor = (
        season_c(climate, ordinal - _EPOCH_ORDINAL + frac)
        + m0
        + (m1 - m0) * np.clip(frac, 0.0, 1.0)
        + diurnal_k(solar_h, sunrise, max_h, climate.diurnal_range_k)
    )
    solar = np.where(
        (solar_h > sunrise) & (solar_h < sunset),
        np.sin(np.pi * (solar_h - sunrise) / max(sunset - sunrise, 1e-9)),
        0.0,
    )
    outdoor.setflags(write=False)
    solar.setflags(write=False)
    return outdoor, solar


@dataclass(frozen=True, slots=True)
class DayWeather:
    """Weather of one local day: per slot and per second."""

    slot_starts: IntArray  # elapsed seconds of each slot's start
    outdoor_c: FloatArray  # per slot (at its midpoint)
    solar: FloatArray  # per slot, 0 at night, 1 at solar noon
    outdoor: Ramp  # per second: linear through the slot midpoints
    mean_c: float  # the day's mean outdoor temperature
    inlet_c: float  # mains water
    sunrise_wall_h: float  # wall-clock hours
    sunset_wall_h: float


@functools.lru_cache(maxsize=64)  # pure: shared by every meter of a fleet on the same day
def day_weather(climate: Climate, local: LocalDay, seed: int) -> DayWeather:
    """The weather of ``local`` in ``climate`` for the fleet seeded ``seed``."""
    starts = np.arange(0, local.n_s, SLOT_S, dtype=np.int64)
    starts.setflags(write=False)
    outdoor, solar = slot_weather(climate, local, seed)
    sunrise, sunset = sun_hours(climate.latitude_deg, local.ordinal)
    delay = climate.solar_noon_delay_h
    return DayWeather(
        slot_starts=starts,
        outdoor_c=outdoor,
        solar=solar,
        outdoor=Ramp(SLOT_S / 2.0, float(SLOT_S), outdoor),
        mean_c=float(outdoor.mean()),
        inlet_c=inlet_c(climate, local.ordinal),
        sunrise_wall_h=sunrise + delay + local.dst_before_h,
        sunset_wall_h=sunset + delay + local.dst_after_h,
    )
