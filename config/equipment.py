"""Equipment of the ``realistic`` profile: the AC's room, the air conditioner, the geyser, hot-water draws, the other
appliances and the meter's noise.

Every parameter has a default with its source or reason beside it. Units are in the names: ``_kw``, ``_w`` (power),
``_c`` (temperature), ``_k`` (temperature difference), ``_l`` (litres), ``_s`` (seconds), ``_w_per_k`` (conductance),
``_j_per_k`` (heat capacity), ``_l_per_s`` (flow). Who uses them, when and where (schedules, climates, the household
templates) is ``config.realistic``'s.
"""

from __future__ import annotations

from dataclasses import dataclass

from config.errors import ConfigError
from config.households import HourBlock


def _positive(key: str, **values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise ConfigError(f"{key}.{name}", f"must be > 0, got {value}")


@dataclass(frozen=True, slots=True)
class Room:
    """The AC's zone as one thermal node: C dT/dt = UA (T_drive - T) + gains - cooling
    (``simulator.profiles.aircon``)."""

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
