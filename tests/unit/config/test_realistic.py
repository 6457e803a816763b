"""config.realistic: templates keep the classic households, parameters validate, documented kWh ranges."""

from __future__ import annotations

from dataclasses import replace

import pytest

from config.errors import ConfigError
from config.households import CLASSIC
from config.parsing import CLIMATE_NAMES
from config.realistic import (
    CLIMATES,
    DAILY_KWH,
    DEFAULT_CLIMATE,
    PHOENIX,
    TEMPLATES,
    Climate,
    Schedule,
    daily_kwh_range,
    household_model,
)


@pytest.mark.parametrize("hid", "ABC")
def test_templates_keep_the_classic_households(hid: str) -> None:
    model, classic = TEMPLATES[hid], CLASSIC[hid]
    assert model.schedule.comfort_hours == classic.ac_hours
    assert model.schedule.hot_water_hours == classic.geyser_hours
    assert model.aircon.rated_kw == classic.ac_kw
    assert (model.geyser.element_kw if model.geyser else 0.0) == classic.geyser_kw
    assert model.schedule.rotation_h == (0.0,)
    assert model.schedule.shift_h == 0.0
    assert model.climate == DEFAULT_CLIMATE
    assert model.aircon.min_on_s >= 180
    assert model.aircon.min_off_s >= 180


def test_office_has_no_geyser_and_no_weekend_comfort() -> None:
    assert TEMPLATES["B"].geyser is None
    assert not TEMPLATES["B"].schedule.comfort_on_weekends


def test_household_model() -> None:
    assert household_model("a") == TEMPLATES["A"]
    assert household_model("C", PHOENIX).climate == PHOENIX
    with pytest.raises(ConfigError, match="household"):
        household_model("D")
    assert set(CLIMATES) == {"new-delhi", "phoenix", "brisbane"}


def test_settings_know_the_climates_by_name() -> None:
    # config.parsing names the climates without importing this module (see CLIMATE_NAMES): the two must agree.
    assert tuple(CLIMATES) == CLIMATE_NAMES


def test_daily_kwh_ranges_are_documented() -> None:
    assert set(DAILY_KWH) == {"A", "B-weekday", "B-weekend", "C"}
    for band in DAILY_KWH.values():
        assert 0 < band.low_kwh < band.high_kwh
        assert len(band.source) > 40
    assert daily_kwh_range("b", weekday=False) == DAILY_KWH["B-weekend"]
    assert daily_kwh_range("A", weekday=False) == DAILY_KWH["A"]


@pytest.mark.parametrize(
    ("build", "key"),
    [
        (lambda: Climate("x", 95.0, 20, 5, 180, 10), "climate.latitude_deg"),
        (lambda: Climate("x", 10.0, 20, 5, 0, 10), "climate.hottest_day_of_year"),
        (lambda: replace(DEFAULT_CLIMATE, diurnal_range_k=-1.0), "climate"),
        (lambda: replace(TEMPLATES["A"].schedule, occupants=0), "schedule.occupants"),
        (lambda: replace(TEMPLATES["A"].schedule, weekday=((25.0, 0),)), "schedule.weekday"),
        (lambda: replace(TEMPLATES["A"].schedule, rotation_h=()), "schedule.rotation"),
    ],
)
def test_bad_parameters_name_their_key(build: object, key: str) -> None:
    assert callable(build)
    with pytest.raises(ConfigError) as info:
        build()
    assert info.value.key == key


def test_schedule_is_a_frozen_value() -> None:
    schedule = TEMPLATES["A"].schedule
    assert isinstance(schedule, Schedule)
    with pytest.raises(AttributeError):
        schedule.occupants = 4  # type: ignore[misc]
