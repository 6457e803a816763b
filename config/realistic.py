"""Parameters of the ``realistic`` profile: climate, rooms, air conditioners, geysers, hot-water use, appliances.

Every parameter has a default with its source or reason beside it. Units are in the names: ``_kw``, ``_w`` (power),
``_c`` (temperature), ``_k`` (temperature difference), ``_l`` (litres), ``_s`` (seconds), ``_h`` (hours),
``_w_per_k`` (conductance), ``_j_per_k`` (heat capacity), ``_l_per_s`` (flow). Hours are local wall-clock hours of the
fleet's time zone; hour blocks are half-open ``[start, end)``, as in ``config.households``.

The three templates keep the classic households' identity (``config.households``): their AC hours are the comfort
windows in which the thermostat may run the AC, their geyser hours are when hot water is drawn, their AC and geyser
levels are the rated electrical inputs. ``DAILY_KWH`` holds the plausible daily consumption of each, with its reasoning.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import IntEnum
from types import MappingProxyType
from typing import Final

from config.errors import ConfigError
from config.households import CLASSIC, HourBlock


class Presence(IntEnum):
    """Who is in the household (or office) from a given hour on."""

    AWAY = 0
    ASLEEP = 1
    AWAKE = 2


PresencePattern = tuple[tuple[float, Presence], ...]  # (local hour, presence from then on), around the clock


def _positive(key: str, **values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise ConfigError(f"{key}.{name}", f"must be > 0, got {value}")


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
class Room:
    """The AC's zone as one thermal node: C dT/dt = UA (T_drive - T) + gains - cooling (``simulator.aircon``)."""

    # Bedroom of a brick-and-concrete flat, ~14 m2, two outside walls: U 2.1 W/m2K (230 mm brick) x 18 m2 + single
    # glazing U 5.8 x 3 m2 + infiltration (~1 ACH of 42 m3) + partitions to uncooled rooms + part of an uninsulated
    # RCC roof (U ~3): ~140 W/K (ECBC 2017 and ASHRAE Fundamentals ch. 26-27 U-values).
    ua_w_per_k: float = 140.0
    # Effective capacity of what follows the air within minutes: air (~50 kJ/K), furniture (~0.3 MJ/K) and the first
    # ~1 cm of the inner wall and slab surfaces (~40 m2 x 2 MJ/m3K x 1 cm ~ 1 MJ/K); it sets how fast the thermostat
    # cycles (runs and rests of 5-20 min, as fixed-speed room ACs do).
    heat_capacity_j_per_k: float = 1.5e6
    person_awake_w: float = 75.0  # ASHRAE Fundamentals ch. 18 table 1: seated, light work, sensible ~70-75 W
    person_asleep_w: float = 45.0  # sleeping, sensible (same table, metabolic rate 0.7 met)
    appliance_gain_w: float = 150.0  # TV, fan motors, lights in the zone while someone is awake there
    solar_gain_w: float = 400.0  # peak at solar noon: 3 m2 glazing x SHGC ~0.5 (with curtains) x ~270 W/m2 vertical
    # Heavy walls and roof delay and damp what they pass on (ASHRAE's TETD / time-lag and decrement method): the share
    # mass_share of UA sees the sol-air temperature of mass_lag_h earlier, its swing about the daily mean times
    # mass_decrement; the rest (glass, air leaks) sees the outdoor air at once.
    mass_share: float = 0.5  # walls and roof carry about half of a flat's room conductance
    mass_lag_h: float = 6.0  # 230 mm brick, 150 mm RCC slab: 6-8 h time lag (CIBSE Guide A, table 3.49-type data)
    mass_decrement: float = 0.5  # decrement factor 0.3-0.6 for such walls
    sol_air_k: float = 8.0  # sun on walls and roof, alpha I / h_o averaged over the surfaces, at solar noon

    def __post_init__(self) -> None:
        _positive("room", ua_w_per_k=self.ua_w_per_k, heat_capacity_j_per_k=self.heat_capacity_j_per_k)
        if not 0 <= self.mass_share <= 1 or not 0 <= self.mass_decrement <= 1 or self.mass_lag_h < 0:
            raise ConfigError("room.mass", "mass_share and mass_decrement within [0, 1], mass_lag_h >= 0")


@dataclass(frozen=True, slots=True)
class Aircon:
    """A fixed-speed split AC: thermostat with hysteresis, compressor protection timers, start-up surge."""

    rated_kw: float = 1.5  # electrical input at T1 (35 C outdoor): the classic level, a 1.5-ton (5.3 kW) split unit
    eer_w_per_w: float = 3.5  # cooling W per electrical W at T1: a BEE 3-star split AC (ISEER ~3.5-3.8)
    setpoint_c: float = 25.0  # BEE's 2020 advisory default is 24 C; surveys find 24-26 C in Indian homes
    band_k: float = (
        1.0  # thermostat differential: on at set-point + band/2, off at set-point - band/2 (+-0.5 K typical)
    )
    min_on_s: int = 180  # compressor protection: minimum run of 3 min (manufacturers' anti-short-cycle timers)
    min_off_s: int = 180  # and 3 min off before a restart, so that pressures equalise
    surge_s: int = 3  # start-up: locked-rotor current of 5-7x for < 1 s, then spin-up: ~2.5x on average over 1-s
    surge_factor: float = 2.5  # samples during the first 3 s (PSC compressor inrush, meter-averaged)
    fan_kw: float = 0.04  # indoor fan keeps running while the compressor rests in comfort hours (20-60 W motors)
    power_per_k: float = 0.012  # input power rises ~1.2 %/K of outdoor temperature (manufacturers' performance tables)
    capacity_per_k: float = -0.009  # cooling capacity falls ~0.9 %/K above T1 (same tables; ISO 5151 T1 = 35 C)

    def __post_init__(self) -> None:
        _positive("aircon", rated_kw=self.rated_kw, eer_w_per_w=self.eer_w_per_w, band_k=self.band_k)
        if self.min_on_s < 180 or self.min_off_s < 180:
            raise ConfigError("aircon.min_on_s", "compressor minimum on and off times must be >= 180 s")
        if self.surge_s < 0 or self.surge_factor < 1 or self.fan_kw < 0:
            raise ConfigError("aircon.surge", "surge_s >= 0, surge_factor >= 1, fan_kw >= 0")


@dataclass(frozen=True, slots=True)
class Geyser:
    """An electric storage water heater as one fully mixed node (the EnergyPlus WaterHeater:Mixed model)."""

    volume_l: float = 150.0  # SANS 151 sizes are 50-300 L; 150 L is the common family geyser
    element_kw: float = 3.0  # the classic level; SA and Indian elements are 2-4 kW, 3 kW the most common
    setpoint_c: float = 60.0  # factory setting; >= 55-60 C against Legionella (SANS 10252-1, WHO guidance)
    band_k: float = 5.0  # rod thermostat differential: the element is on below set-point - band until the set-point
    # Standing loss: SANS 151 allows ~1.5-2 kWh/24 h for a 150 L tank at a 45 K tank-to-air difference: ~1.7 W/K.
    ua_w_per_k: float = 1.7
    timer_hours: tuple[HourBlock, ...] | None = None  # element allowed only inside; None: thermostat alone (default)

    def __post_init__(self) -> None:
        _positive("geyser", volume_l=self.volume_l, element_kw=self.element_kw, band_k=self.band_k)
        _positive("geyser", ua_w_per_k=self.ua_w_per_k)


@dataclass(frozen=True, slots=True)
class HotWater:
    """Hot-water draws at the tap (use side); the tank supplies the hot share of a thermostatic mix."""

    showers_per_person: float = 0.9  # probability that each occupant showers on a day
    shower_s: float = 420.0  # median 7 min (Building America DHW event schedules, Hendron & Burch 2007: 7-9 min)
    shower_flow_l_per_s: float = 0.13  # ~8 L/min, a standard shower head (6-10 L/min)
    shower_c: float = 40.0  # ASHRAE Applications ch. 51: showers 40-43 C at the head
    dishes_per_day: float = 2.0  # hand dish-washing after breakfast and dinner
    dish_s: float = 300.0
    dish_flow_l_per_s: float = 0.06  # ~18 L per wash
    dish_c: float = 45.0
    small_per_day: float = 4.0  # hand washing and rinsing, anywhere in the waking day
    small_s: float = 30.0
    small_flow_l_per_s: float = 0.1
    small_c: float = 38.0


@dataclass(frozen=True, slots=True)
class Appliances:
    """Everything else on the Overall channel: standby, fridge, lighting, plug loads, kettle, microwave, washer."""

    standby_kw: float = 0.04  # always-on: router, set-top box, chargers (IEA 4E / LBNL: 30-100 W per home)
    fridge_kw: float = 0.1  # compressor running power of a 250 L frost-free fridge (BEE label ~0.8-1 kWh/day)
    fridge_on_s: float = 900.0  # runs of ~15 min
    fridge_off_s: float = 1500.0  # rests of ~25 min: 37.5 % duty at 25 C
    fridge_per_k: float = 0.03  # run time grows ~3 %/K of kitchen temperature (Geppert & Stamminger 2010)
    fridge_surge_s: int = 2
    fridge_surge_factor: float = 4.0  # small reciprocating compressor inrush, meter-averaged
    lighting_kw: float = 0.18  # all lit: 8-12 LED/CFL lamps and tubes of 10-20 W
    lighting_needs_dark: bool = True  # homes light up after dusk and before dawn; offices whenever occupied
    plug_kw: float = 0.15  # TV, ceiling fans, laptop, chargers while someone is awake at home
    desks: int = 0  # office workstations
    desk_kw: float = 0.09  # desktop PC and monitor in use (ENERGY STAR: 60-120 W)
    kettle_kw: float = 1.8
    kettle_s: float = 150.0  # ~0.8 L from 25 C to boiling
    kettle_per_day: float = 2.0
    microwave_kw: float = 1.2  # input of an 800 W (output) oven
    microwave_s: float = 120.0
    microwave_per_day: float = 1.0
    washer_per_day: float = 0.45  # ~3 loads a week (RECS 2020: 4-5 loads a week in US homes, fewer in smaller ones)
    washer_hot: float = 0.3  # share of loads heated in the machine (most Indian loads are cold washes)
    washer_heat_kw: float = 2.0  # heating element, ~15 min to reach 40 C
    washer_heat_s: float = 900.0
    washer_motor_kw: float = 0.25  # drum motor while tumbling, 12 s on / 4 s off
    washer_wash_s: float = 2400.0
    washer_spin_kw: float = 0.4
    washer_spin_s: float = 600.0


@dataclass(frozen=True, slots=True)
class Noise:
    """Per-second measurement error of each power channel."""

    relative: float = 0.01  # uniform within +-1 %: an IEC 62053-21 class 1 meter's error band; zero stays zero

    def __post_init__(self) -> None:
        if not 0 <= self.relative < 0.5:
            raise ConfigError("noise.relative", "must be within [0, 0.5)")


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
