"""Fleet diversity: a member's own AC, room, geyser, rhythm and habits, drawn once around its template.

Pure: the generator is the member's ``rng_for(seed, Purpose.DIVERSITY, member_key)``; draws happen in a fixed order,
whatever the template, so a member's parameters depend only on the seed and its key. Spreads are
``config.realistic.Diversity``; every draw is clipped so that members stay in the plausible ranges of their template.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from config.realistic import DEFAULT_DIVERSITY, Diversity, HouseholdModel


def member_model(
    template: HouseholdModel, rng: np.random.Generator, spread: Diversity = DEFAULT_DIVERSITY
) -> HouseholdModel:
    """A fleet member's model: ``template`` with ratings, set-points, tank, insulation and schedule drawn."""
    weights = np.asarray(spread.ac_size_weights, dtype=np.float64)
    size = spread.ac_sizes[int(rng.choice(len(spread.ac_sizes), p=weights / weights.sum()))]
    eer = float(np.clip(template.aircon.eer_w_per_w + spread.eer_sd * rng.standard_normal(), 2.8, 4.5))
    setpoint_k = float(
        np.clip(spread.setpoint_sd_k * rng.standard_normal(), -spread.setpoint_limit_k, spread.setpoint_limit_k)
    )
    band = float(rng.uniform(*spread.band_range))
    ua = float(np.clip(np.exp(spread.ua_log_sd * rng.standard_normal()), 0.6, 1.7))
    capacity = float(rng.uniform(*spread.capacity_range))
    volume_l = spread.geyser_volumes_l[int(rng.integers(len(spread.geyser_volumes_l)))]
    element_kw = spread.geyser_elements_kw[int(rng.integers(len(spread.geyser_elements_kw)))]
    tank_c = spread.geyser_setpoints_c[int(rng.integers(len(spread.geyser_setpoints_c)))]
    shift_h = float(
        np.clip(
            spread.schedule_shift_sd_h * rng.standard_normal(),
            -2 * spread.schedule_shift_sd_h,
            2 * spread.schedule_shift_sd_h,
        )
    )
    usage = float(rng.uniform(*spread.usage_range))
    water = float(rng.uniform(*spread.usage_range))
    fridge = float(rng.uniform(0.8, 1.3))

    ac = template.aircon
    room = template.room
    app = template.appliances
    hw = template.hot_water
    geyser = template.geyser
    if geyser is not None:
        geyser = replace(
            geyser,
            volume_l=volume_l,
            element_kw=element_kw,
            setpoint_c=tank_c,
            ua_w_per_k=geyser.ua_w_per_k * (volume_l / geyser.volume_l) ** (2.0 / 3.0),  # loss ~ surface ~ V^(2/3)
        )
    return replace(
        template,
        aircon=replace(
            ac,
            rated_kw=ac.rated_kw * size,
            eer_w_per_w=eer,
            setpoint_c=ac.setpoint_c + setpoint_k,
            band_k=ac.band_k * band,
        ),
        room=replace(
            room, ua_w_per_k=room.ua_w_per_k * ua, heat_capacity_j_per_k=room.heat_capacity_j_per_k * capacity
        ),
        geyser=geyser,
        schedule=replace(template.schedule, shift_h=template.schedule.shift_h + shift_h),
        hot_water=replace(
            hw, shower_s=hw.shower_s * water, dish_s=hw.dish_s * water, small_per_day=hw.small_per_day * water
        ),
        appliances=replace(
            app,
            fridge_kw=app.fridge_kw * fridge,
            lighting_kw=app.lighting_kw * usage,
            plug_kw=app.plug_kw * usage,
            kettle_per_day=app.kettle_per_day * usage,
            microwave_per_day=app.microwave_per_day * usage,
            washer_per_day=min(1.0, app.washer_per_day * usage),
        ),
    )
