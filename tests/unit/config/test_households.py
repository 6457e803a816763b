"""config.households: the classic schedules exactly as the original generator had them (seed-behaviour section 1)."""

from __future__ import annotations

import pytest

from config.errors import ConfigError
from config.households import CLASSIC, CLASSIC_ORDER, Household, household, seed_index

# Written out from seed-behaviour.md, independently of the module: (level kW, hours on), half-open hour blocks.
AC_HOURS = {
    "A": (1.5, set(range(0, 7)) | set(range(18, 23))),
    "B": (2.0, set(range(9, 17))),
    "C": (1.5, {22, 23} | set(range(0, 6)) | set(range(10, 14))),
}
GEYSER_HOURS = {
    "A": (3.0, {6, 7, 18, 19}),
    "B": (0.0, set()),
    "C": (3.0, {5, 6, 21, 22}),
}
CASES = [(hid, hour) for hid in "ABC" for hour in range(24)]


@pytest.mark.parametrize(("hid", "hour"), CASES)
def test_every_hour(hid: str, hour: int) -> None:
    house = CLASSIC[hid]
    assert house.ac_on(hour) is (hour in AC_HOURS[hid][1])
    assert house.geyser_on(hour) is (hour in GEYSER_HOURS[hid][1])


@pytest.mark.parametrize(("hid", "ac_hours", "geyser_hours"), [("A", 12, 4), ("B", 8, 0), ("C", 12, 4)])
def test_hours_per_day(hid: str, ac_hours: int, geyser_hours: int) -> None:
    house = CLASSIC[hid]
    assert sum(house.ac_on(h) for h in range(24)) == ac_hours
    assert sum(house.geyser_on(h) for h in range(24)) == geyser_hours


@pytest.mark.parametrize("hid", "ABC")
def test_levels(hid: str) -> None:
    house = CLASSIC[hid]
    assert house.id == hid
    assert house.ac_kw == AC_HOURS[hid][0]
    assert house.geyser_kw == GEYSER_HOURS[hid][0]
    assert (house.base_kw, house.other_kw_low, house.other_kw_high) == (0.5, 0.1, 1.0)


def test_lookup_and_order() -> None:
    assert household("a") is CLASSIC["A"]
    assert household("C") is CLASSIC["C"]
    assert CLASSIC_ORDER == ("A", "B", "C")
    assert [seed_index(h) for h in ("A", "b", "C")] == [0, 1, 2]


@pytest.mark.parametrize("hid", ["D", "", "AA", "a+"])
def test_unknown_household(hid: str) -> None:
    with pytest.raises(ConfigError) as info:
        household(hid)
    assert info.value.key == "household"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ac_hours": ((5, 5),)},
        {"ac_hours": ((-1, 3),)},
        {"geyser_hours": ((20, 25),)},
        {"ac_kw": -0.1},
        {"geyser_kw": -1.0},
        {"base_kw": -0.5},
        {"other_kw_low": 2.0},
        {"other_kw_low": -0.1},
    ],
)
def test_invalid_household(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {
        "id": "X",
        "description": "test",
        "ac_kw": 1.0,
        "ac_hours": ((0, 1),),
        "geyser_kw": 1.0,
        "geyser_hours": (),
    }
    args.update(kwargs)
    with pytest.raises(ConfigError) as info:
        Household(**args)  # type: ignore[arg-type]
    assert info.value.key == "households.X"
