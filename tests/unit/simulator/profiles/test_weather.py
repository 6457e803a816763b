"""simulator.profiles.weather: seasons by hemisphere, the daily cycle, daylight, mains water, day-to-day weather."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from config.realistic import BRISBANE, NEW_DELHI, PHOENIX, Climate
from simulator.localday import local_day
from simulator.profiles.weather import day_weather, inlet_c, midnight_anomaly_k, slot_weather, sun_hours

KOLKATA = ZoneInfo("Asia/Kolkata")
CALM = Climate("calm", 28.6, 25.0, 9.0, 185, 11.0, solar_noon_delay_h=0.35, weather_sd_k=0.0)


def mean_c(climate: Climate, d: date, seed: int = 1) -> float:
    return day_weather(climate, local_day(d, KOLKATA), seed).mean_c


def test_seasons_follow_the_hemisphere() -> None:
    delhi, phoenix, brisbane = (replace(c, weather_sd_k=0.0) for c in (NEW_DELHI, PHOENIX, BRISBANE))
    assert mean_c(delhi, date(2024, 6, 10)) - mean_c(delhi, date(2024, 1, 10)) > 15.0
    assert mean_c(phoenix, date(2024, 7, 15)) - mean_c(phoenix, date(2024, 1, 15)) > 20.0
    assert mean_c(brisbane, date(2024, 1, 20)) - mean_c(brisbane, date(2024, 7, 20)) > 9.0
    # With the weather: the seasons still show over a month of days.
    june = np.mean([mean_c(NEW_DELHI, date(2024, 6, d)) for d in range(1, 31)])
    january = np.mean([mean_c(NEW_DELHI, date(2024, 1, d)) for d in range(1, 31)])
    assert june - january > 13.0
    # Without weather, the daily mean is the seasonal sine (diurnal half-cosines average out).
    assert mean_c(CALM, date(2024, 7, 3)) == pytest.approx(34.0, abs=0.3)
    assert mean_c(CALM, date(2025, 1, 1)) == pytest.approx(16.2, abs=0.5)


def test_daily_cycle_min_at_sunrise_max_in_the_afternoon() -> None:
    day = local_day(date(2024, 6, 10), KOLKATA)
    weather = day_weather(CALM, day, 1)
    hours = (weather.slot_starts + 450) / 3600
    sunrise, _ = sun_hours(CALM.latitude_deg, day.ordinal)
    assert hours[np.argmin(weather.outdoor_c)] == pytest.approx(sunrise + 0.35, abs=0.3)
    assert hours[np.argmax(weather.outdoor_c)] == pytest.approx(12.0 + 0.35 + 2.5, abs=0.3)
    assert np.ptp(weather.outdoor_c) == pytest.approx(11.0, abs=0.2)
    assert weather.solar[hours < sunrise].max() == 0.0
    assert weather.solar.max() == pytest.approx(1.0, abs=0.01)


def test_day_length() -> None:
    june, dec = date(2024, 6, 21).toordinal(), date(2024, 12, 21).toordinal()
    rise, sett = sun_hours(28.6, june)
    assert sett - rise == pytest.approx(13.9, abs=0.2)  # New Delhi, June solstice
    rise, sett = sun_hours(28.6, dec)
    assert sett - rise == pytest.approx(10.3, abs=0.2)
    rise, sett = sun_hours(-27.5, june)
    assert sett - rise < 11.0  # southern winter
    assert sun_hours(80.0, june) == (0.0, 24.0)
    assert sun_hours(80.0, dec) == (12.0, 12.0)


def test_mains_water_lags_and_follows_the_seasons() -> None:
    summer = inlet_c(NEW_DELHI, date(2024, 7, 5).toordinal())
    winter = inlet_c(NEW_DELHI, date(2024, 1, 5).toordinal())
    assert 30.0 < summer < 36.0
    assert 18.0 < winter < 24.0
    assert inlet_c(BRISBANE, date(2024, 1, 20).toordinal()) > inlet_c(BRISBANE, date(2024, 7, 20).toordinal())


def test_weather_is_seeded_persistent_and_sized() -> None:
    ordinals = range(date(2020, 1, 1).toordinal(), date(2020, 1, 1).toordinal() + 1500)
    series = np.array([midnight_anomaly_k(NEW_DELHI, 5, o) for o in ordinals])
    assert series.std() == pytest.approx(NEW_DELHI.weather_sd_k, rel=0.15)
    assert np.corrcoef(series[:-1], series[1:])[0, 1] == pytest.approx(0.75, abs=0.08)
    assert series.tolist()[:20] == [midnight_anomaly_k(NEW_DELHI, 5, o) for o in ordinals[:20]]
    assert midnight_anomaly_k(NEW_DELHI, 6, ordinals[0]) != series[0]


def test_continuous_across_midnight() -> None:
    first = date(2024, 5, 1)
    for k in range(30):
        today = day_weather(NEW_DELHI, local_day(first + timedelta(days=k), KOLKATA), 3)
        tomorrow = day_weather(NEW_DELHI, local_day(first + timedelta(days=k + 1), KOLKATA), 3)
        assert abs(tomorrow.outdoor_c[0] - today.outdoor_c[-1]) < 0.6  # 15 min apart, as within a day


def test_lagged_slots_are_the_earlier_weather() -> None:
    day = local_day(date(2024, 6, 10), KOLKATA)
    now, _ = slot_weather(NEW_DELHI, day, 1)
    now_sun = slot_weather(NEW_DELHI, day, 1)[1]
    lagged, sun = slot_weather(NEW_DELHI, day, 1, 6 * 3600)
    assert np.allclose(lagged[24:], now[:-24], atol=1e-9)  # 24 slots of 15 min = 6 h
    assert np.allclose(sun[24:], now_sun[:-24])
    assert sun[24:40].max() == 0.0  # 00:00-04:00 is night six hours later too
    assert sun[:4].min() > 0.0  # six hours before 00:00 the evening sun still shines
