"""Hypothesis strategies for the wire contract's values, shared by the tests that fuzz readings."""

from __future__ import annotations

from hypothesis import strategies as st

from config.wire import MAX_ABS_POWER_W, MAX_ENERGY_KWH

POWERS = st.none() | st.floats(-MAX_ABS_POWER_W, MAX_ABS_POWER_W)  # a power in W, or no value
ENERGIES = st.floats(0.0, MAX_ENERGY_KWH)  # an energy register in kWh
