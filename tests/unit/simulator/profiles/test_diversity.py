"""simulator.profiles.diversity: members spread around their template, within documented limits, drawn from their
key."""

from __future__ import annotations

import numpy as np

from config.realistic import DEFAULT_DIVERSITY, TEMPLATES
from simulator.profiles.diversity import member_model
from simulator.seeds import Purpose, rng_for

SEED = 99


def members(hid: str, count: int = 300) -> list:  # type: ignore[type-arg]
    index = "ABC".index(hid)
    return [member_model(TEMPLATES[hid], rng_for(SEED, Purpose.DIVERSITY, (index, m))) for m in range(1, count + 1)]


def test_members_spread_within_limits() -> None:
    template = TEMPLATES["A"]
    models = members("A")
    assert template.geyser is not None
    rated = np.array([m.aircon.rated_kw for m in models])
    assert set(np.round(rated / template.aircon.rated_kw, 6)) == {round(s, 6) for s in DEFAULT_DIVERSITY.ac_sizes}
    assert abs(np.mean(rated == template.aircon.rated_kw) - 0.5) < 0.08
    setpoints = np.array([m.aircon.setpoint_c for m in models])
    assert np.all(np.abs(setpoints - template.aircon.setpoint_c) <= DEFAULT_DIVERSITY.setpoint_limit_k)
    assert 0.7 < setpoints.std() < 1.1
    ua = np.array([m.room.ua_w_per_k for m in models]) / template.room.ua_w_per_k
    assert ua.min() >= 0.6
    assert ua.max() <= 1.7
    assert 0.18 < np.log(ua).std() < 0.3
    volumes = {m.geyser.volume_l for m in models if m.geyser is not None}
    assert volumes == set(DEFAULT_DIVERSITY.geyser_volumes_l)
    shifts = np.array([m.schedule.shift_h for m in models])
    assert np.abs(shifts).max() <= 1.0
    assert shifts.std() > 0.3
    eers = np.array([m.aircon.eer_w_per_w for m in models])
    assert eers.min() >= 2.8
    assert eers.max() <= 4.5
    assert all(m.aircon.min_on_s == template.aircon.min_on_s for m in models)  # compressor protection is not diverse


def test_bigger_tanks_lose_more_heat() -> None:
    template = TEMPLATES["C"]
    assert template.geyser is not None
    for m in members("C", 50):
        assert m.geyser is not None
        expected = template.geyser.ua_w_per_k * (m.geyser.volume_l / template.geyser.volume_l) ** (2 / 3)
        assert np.isclose(m.geyser.ua_w_per_k, expected)


def test_office_members_keep_no_geyser_and_draws_are_reproducible() -> None:
    assert all(m.geyser is None for m in members("B", 20))
    assert members("B", 5) == members("B", 5)
    assert members("A", 5) != [
        member_model(TEMPLATES["A"], rng_for(SEED + 1, Purpose.DIVERSITY, (0, m))) for m in range(1, 6)
    ]
