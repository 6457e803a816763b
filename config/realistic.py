"""Parameters of the ``realistic`` profile: climate, schedules, the household templates, the fleet's spread around
them and their plausible daily consumption (the equipment in a home is ``config.equipment``'s).

Every parameter has a default with its source or reason beside it. Units are in the names: ``_c`` (temperature),
``_k`` (temperature difference), ``_s`` (seconds), ``_h`` (hours), ``_kwh`` (energy), ``_deg`` (angle). Hours are
local wall-clock hours of the fleet's time zone; hour blocks are half-open ``[start, end)``, as in
``config.households``.

The three templates keep the classic households' identity (``config.households``): their AC hours are the comfort
windows in which the thermostat may run the AC, their geyser hours are when hot water is drawn, their AC and geyser
levels are the rated electrical inputs. ``DAILY_KWH`` holds the plausible daily consumption of each, with its reasoning.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import IntEnum
from types import MappingProxyType
from typing import Final

from config.equipment import Aircon, Appliances, Geyser, HotWater, Noise, Room
from config.errors import ConfigError
from config.households import CLASSIC, HourBlock


class Presence(IntEnum):
    """Who is in the household (or office) from a given hour on."""

    AWAY = 0
    ASLEEP = 1
    AWAKE = 2


PresencePattern = tuple[tuple[float, Presence], ...]  # (local hour, presence from then on), around the clock


@dataclass(frozen=True, slots=True)
class Climate:
    """Outdoor temperature: a seasonal sine, a daily cycle (minimum at sunrise) and day-to-day weather."""

    name: str
    latitude_deg: float  # north > 0: day length; with hottest_day_of_year, the hemisphere's seasons
    annual_mean_c: float
    seasonal_amplitude_k: float  # half the difference between the hottest and the coldest monthly mean
    hottest_day_of_year: int  # 1-366, the seasonal maximum (northern ~160-200, southern ~15-30)
    diurnal_range_k: float  # mean daily maximum minus mean daily minimum
    max_after_noon_h: float = 2.5  # the daily maximum comes 2-3 h after solar noon (surface energy balance lag)
    # Local clock minus solar time at standard time: the longitude's offset from the zone's meridian / 15 deg per h.
    # The weather follows the fleet's clock: the households live where their time zone says.
    solar_noon_delay_h: float = 0.0
    weather_sd_k: float = 2.0  # sd of the daily mean's anomaly (synoptic weather), lag-1 correlation 0.75

    def __post_init__(self) -> None:
        if not -90 <= self.latitude_deg <= 90:
            raise ConfigError("climate.latitude_deg", "must be within [-90, 90]")
        if not 1 <= self.hottest_day_of_year <= 366:
            raise ConfigError("climate.hottest_day_of_year", "must be within 1-366")
        if self.seasonal_amplitude_k < 0 or self.diurnal_range_k < 0 or self.weather_sd_k < 0:
            raise ConfigError("climate", "amplitudes, ranges and sd must be >= 0")
        if not 0 < self.max_after_noon_h < 6:
            raise ConfigError("climate.max_after_noon_h", "must be within (0, 6) h")


# IMD climate normals, New Delhi (Safdarjung) 1981-2010: January mean max 20 C / min 7.6 C, June 39 C / 28 C, mean daily
# range ~11 K (13-14 K pre-monsoon, 7-8 K in the monsoon). A least-squares sine through the twelve monthly means: mean
# 25.2 C, amplitude 9.1 K, peak on day ~185 (the monsoon runs ~2 K below it in July-September, May ~1.8 K above).
# 28.6 N, 77.2 E: solar noon at about 12:21 IST (zone meridian 82.5 E).
NEW_DELHI: Final = Climate("New Delhi", 28.6, 25.2, 9.1, 185, 11.0, solar_noon_delay_h=0.35)
# NOAA 1991-2020 normals, Phoenix Sky Harbor: January 19.8 / 7.8 C, July 41.4 / 28.9 C, daily range ~12.5 K; sine fit of
# the monthly means: 24.1 C, amplitude 11.2 K, peak on day ~199. 33.4 N, 112.1 W in MST (meridian 105 W): noon ~12:28.
PHOENIX: Final = Climate("Phoenix", 33.4, 24.1, 11.2, 199, 12.5, solar_noon_delay_h=0.47)
# Bureau of Meteorology, Brisbane: January ~30 / 21.5 C, July ~22 / 10.5 C: a southern-hemisphere example (27.5 S,
# 153 E in AEST, meridian 150 E: solar noon about 11:48).
BRISBANE: Final = Climate("Brisbane", -27.5, 21.0, 4.8, 20, 10.0, solar_noon_delay_h=-0.2)
DEFAULT_CLIMATE: Final = NEW_DELHI  # a hot-summer city: ACs cycle hard in May-June and rest in January
CLIMATES: Final = MappingProxyType({"new-delhi": NEW_DELHI, "phoenix": PHOENIX, "brisbane": BRISBANE})


@dataclass(frozen=True, slots=True)
class Schedule:
    """When people are home, awake or asleep, and when the AC may run and hot water is drawn."""

    occupants: int
    weekday: PresencePattern
    weekend: PresencePattern
    comfort_hours: tuple[HourBlock, ...]  # the classic AC hours: the thermostat may run the AC only inside
    hot_water_hours: tuple[HourBlock, ...]  # the classic geyser hours: showers and dishes happen inside
    comfort_on_weekends: bool = True
    jitter_s: float = 900.0  # sd of every change time, each day: people are not clocks (clipped at 2 sd)
    # Shift rotation: the whole day (presence, comfort and hot-water hours) moves by rotation_h[k] hours in period k of
    # rotation_period_days days (k = day ordinal // period mod len). (0.0,) keeps the classic hours every day.
    rotation_h: tuple[float, ...] = (0.0,)
    rotation_period_days: int = 7
    shift_h: float = 0.0  # the household's own offset of its whole day (fleet diversity); 0 for the classic ones

    def __post_init__(self) -> None:
        if self.occupants < 1:
            raise ConfigError("schedule.occupants", "must be >= 1")
        for name, pattern in (("weekday", self.weekday), ("weekend", self.weekend)):
            if not pattern or any(not 0 <= hour < 24 for hour, _ in pattern):
                raise ConfigError(f"schedule.{name}", "needs >= 1 change, hours within [0, 24)")
        if not self.rotation_h or self.rotation_period_days < 1:
            raise ConfigError("schedule.rotation", "rotation_h needs >= 1 offset and the period >= 1 day")
        if self.jitter_s < 0:
            raise ConfigError("schedule.jitter_s", "must be >= 0")


@dataclass(frozen=True, slots=True)
class HouseholdModel:
    """One household (or office) of the realistic profile, with its climate."""

    id: str
    description: str
    schedule: Schedule
    room: Room
    aircon: Aircon
    geyser: Geyser | None  # None: no geyser (the office), Geyser channel 0 W
    hot_water: HotWater
    appliances: Appliances
    climate: Climate = DEFAULT_CLIMATE
    noise: Noise = field(default_factory=Noise)


def _classic(hid: str) -> tuple[tuple[HourBlock, ...], tuple[HourBlock, ...]]:
    return CLASSIC[hid].ac_hours, CLASSIC[hid].geyser_hours


AWAY, ASLEEP, AWAKE = Presence.AWAY, Presence.ASLEEP, Presence.AWAKE

TEMPLATES: Final = MappingProxyType(
    {
        # A day worker's home, 3 people: up at 6, out 8:30-18 on weekdays, errands on weekend mornings.
        "A": HouseholdModel(
            "A",
            "day worker's home",
            Schedule(
                3,
                weekday=((6.0, AWAKE), (8.5, AWAY), (18.0, AWAKE), (23.0, ASLEEP)),
                weekend=((7.5, AWAKE), (11.0, AWAY), (13.5, AWAKE), (23.5, ASLEEP)),
                comfort_hours=_classic("A")[0],
                hot_water_hours=_classic("A")[1],
            ),
            Room(),
            Aircon(rated_kw=CLASSIC["A"].ac_kw),
            Geyser(element_kw=CLASSIC["A"].geyser_kw),
            HotWater(),
            Appliances(),
        ),
        # B office, 6 staff, weekdays 9-17; a 2-ton unit (the classic 2 kW) for ~70 m2; no geyser.
        "B": HouseholdModel(
            "B",
            "office",
            Schedule(
                6,
                weekday=((9.0, AWAKE), (17.0, AWAY)),
                weekend=((0.0, AWAY),),
                comfort_hours=_classic("B")[0],
                hot_water_hours=(),
                comfort_on_weekends=False,
                jitter_s=600.0,
            ),
            # ~70 m2 mid-floor office: glazed facade and walls ~200 W/K; capacity of air, desks and partitions.
            Room(ua_w_per_k=200.0, heat_capacity_j_per_k=4.0e6, appliance_gain_w=700.0, solar_gain_w=1000.0),
            Aircon(rated_kw=CLASSIC["B"].ac_kw, eer_w_per_w=3.5, setpoint_c=24.0),
            None,
            HotWater(showers_per_person=0.0, dishes_per_day=0.0, small_per_day=0.0),
            Appliances(
                standby_kw=0.25,  # network switch, router, NAS/server, CCTV, emergency lights, water dispenser
                lighting_kw=0.6,  # LPD ~8.5 W/m2 x 70 m2 (ECBC 2017 office 9.5 W/m2; ASHRAE 90.1-2019 6.9 W/m2)
                lighting_needs_dark=False,
                plug_kw=0.1,  # printer, phone chargers, water cooler while staffed
                desks=6,
                kettle_per_day=3.0,
                microwave_per_day=2.0,
                washer_per_day=0.0,
            ),
        ),
        # C shift worker's home, 2 people: up at 5:30, afternoon shift 14-21, rest at home late morning.
        "C": HouseholdModel(
            "C",
            "shift worker's home",
            Schedule(
                2,
                weekday=((5.5, AWAKE), (14.0, AWAY), (21.0, AWAKE), (22.5, ASLEEP)),
                weekend=((5.5, AWAKE), (14.0, AWAY), (21.0, AWAKE), (22.5, ASLEEP)),
                comfort_hours=_classic("C")[0],
                hot_water_hours=_classic("C")[1],
            ),
            Room(ua_w_per_k=130.0, heat_capacity_j_per_k=1.4e6, appliance_gain_w=120.0, solar_gain_w=350.0),
            Aircon(rated_kw=CLASSIC["C"].ac_kw),
            Geyser(volume_l=100.0, element_kw=CLASSIC["C"].geyser_kw, ua_w_per_k=1.3),  # UA ~ area ~ V^(2/3)
            HotWater(),
            Appliances(standby_kw=0.035, fridge_kw=0.09, lighting_kw=0.15, plug_kw=0.12, washer_per_day=0.3),
        ),
    }
)


def household_model(template: str, climate: Climate = DEFAULT_CLIMATE) -> HouseholdModel:
    """The nominal model of a classic household (``A``, ``B``, ``C``) in ``climate``; ConfigError if unknown."""
    found = TEMPLATES.get(template.upper())
    if found is None:
        raise ConfigError("household", f"no realistic template {template!r}; known: {', '.join(TEMPLATES)}")
    return replace(found, climate=climate)


@dataclass(frozen=True, slots=True)
class Diversity:
    """Spread of fleet members around their template (drawn once per member)."""

    ac_sizes: tuple[float, ...] = (2 / 3, 1.0, 4 / 3)  # 1, 1.5 and 2-ton units for a 1.5-ton template
    ac_size_weights: tuple[float, ...] = (0.25, 0.5, 0.25)
    eer_sd: float = 0.3  # BEE 1-5 star split ACs span ISEER ~3.1-4.5
    setpoint_sd_k: float = 1.0  # surveyed set-points spread over ~22-28 C
    setpoint_limit_k: float = 2.5
    band_range: tuple[float, float] = (0.7, 1.5)  # multiplier of the differential
    ua_log_sd: float = 0.25  # insulation, orientation, floor: +-25 % (1 sd) between flats
    capacity_range: tuple[float, float] = (0.75, 1.3)
    geyser_volumes_l: tuple[float, ...] = (100.0, 150.0, 200.0)  # SANS 151 sizes common in homes
    geyser_elements_kw: tuple[float, ...] = (2.0, 3.0, 4.0)
    geyser_setpoints_c: tuple[float, ...] = (55.0, 60.0, 65.0)  # owners turn the dial; 60 C is the factory setting
    schedule_shift_sd_h: float = 0.5  # a household's own rhythm: +-30 min (1 sd), clipped at 2 sd
    usage_range: tuple[float, float] = (0.7, 1.4)  # multiplier of lighting, plug loads, appliance and hot-water use


DEFAULT_DIVERSITY: Final = Diversity()


@dataclass(frozen=True, slots=True)
class KwhRange:
    """A plausible range of daily consumption (Overall, kWh per local day) and where it comes from."""

    low_kwh: float
    high_kwh: float
    source: str


DAILY_KWH: Final = MappingProxyType(
    {
        "A": KwhRange(
            5.0,
            30.0,
            "Prayas Energy Group (2016, 2019): AC-owning urban Indian homes use ~5-8 kWh/day in winter and 13-25 in "
            "summer; an electric geyser adds 2-8 kWh/day (Eskom: geysers are 30-50 % of a SA home's use). One 1.5-ton "
            "AC over 12 comfort hours at 15-60 % duty is 3-11 kWh; RECS 2020: US homes average ~29 kWh/day.",
        ),
        "B-weekday": KwhRange(
            8.0,
            45.0,
            "A ~70 m2 AC office: BEE/ECBC benchmarks of 100-200 kWh/m2/year for air-conditioned offices give 20-40 kWh "
            "per working day; 0.25 kW always on (6 kWh) plus lights, 6 desks and one 2-ton AC at 40-90 % over 8 h.",
        ),
        "B-weekend": KwhRange(
            2.0,
            10.0,
            "Closed office: base load only (network, server, CCTV, fridge): 0.2-0.4 kW around the clock.",
        ),
        "C": KwhRange(
            4.0,
            28.0,
            "As A for a 2-person home (smaller room, 100 L geyser): Prayas, Eskom and RECS figures scaled by "
            "occupants.",
        ),
    }
)


def daily_kwh_range(template: str, weekday: bool) -> KwhRange:
    """The plausible daily kWh of a household template on a weekday or weekend day."""
    hid = template.upper()
    if hid == "B":
        return DAILY_KWH["B-weekday" if weekday else "B-weekend"]
    return DAILY_KWH[hid]
