"""config.equipment: a bad parameter of the room, the AC, the geyser or the meter's noise names its key."""

from __future__ import annotations

import pytest

from config.equipment import Aircon, Geyser, Noise, Room
from config.errors import ConfigError


@pytest.mark.parametrize(
    ("build", "key"),
    [
        (lambda: Aircon(min_on_s=120), "aircon.min_on_s"),
        (lambda: Aircon(rated_kw=0.0), "aircon.rated_kw"),
        (lambda: Aircon(surge_factor=0.5), "aircon.surge"),
        (lambda: Geyser(volume_l=-1.0), "geyser.volume_l"),
        (lambda: Room(ua_w_per_k=0.0), "room.ua_w_per_k"),
        (lambda: Room(mass_share=1.5), "room.mass"),
        (lambda: Noise(relative=0.6), "noise.relative"),
    ],
)
def test_bad_parameters_name_their_key(build: object, key: str) -> None:
    assert callable(build)
    with pytest.raises(ConfigError) as info:
        build()
    assert info.value.key == key
