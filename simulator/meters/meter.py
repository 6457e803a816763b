"""Meter stepping: a meter's counters and sequence, advanced one simulated second at a time.

Pure: ``step`` takes the state and the second's power (kW) and returns the next state and the reading. Energy counters
are kWh and only grow. They integrate the *true* power when it is given (``true_kw``): an injected error corrupts the
reported instantaneous power, not the meter's energy register; without it, a channel with no value adds nothing.
``seq`` grows by exactly 1 per reading; ``skip`` passes a second that publishes no reading (a dropout).
"""

from __future__ import annotations

from dataclasses import dataclass

from config.wire import Reading


@dataclass(frozen=True, slots=True)
class MeterState:
    """What a meter remembers between seconds: the next seq and second, and its energy counters."""

    meter_id: str
    seq: int
    next_ts: int
    ac_kwh: float = 0.0
    geyser_kwh: float = 0.0
    overall_kwh: float = 0.0


def _kwh(counter: float, power_kw: float | None) -> float:
    return counter if power_kw is None else counter + max(power_kw, 0.0) / 3600.0


def _w(power_kw: float | None) -> float | None:
    return None if power_kw is None else power_kw * 1000.0


def _registers(
    state: MeterState, powers_kw: tuple[float | None, float | None, float | None]
) -> tuple[float, float, float]:
    ac_kw, geyser_kw, overall_kw = powers_kw
    return _kwh(state.ac_kwh, ac_kw), _kwh(state.geyser_kwh, geyser_kw), _kwh(state.overall_kwh, overall_kw)


def skip(state: MeterState, true_kw: tuple[float, float, float]) -> MeterState:
    """A second with no reading on the wire (dropout): energy still accrues, ``seq`` does not move."""
    ac_kwh, geyser_kwh, overall_kwh = _registers(state, true_kw)
    return MeterState(state.meter_id, state.seq, state.next_ts + 1, ac_kwh, geyser_kwh, overall_kwh)


def step(
    state: MeterState,
    ac_kw: float | None,
    geyser_kw: float | None,
    overall_kw: float | None,
    true_kw: tuple[float, float, float] | None = None,
) -> tuple[MeterState, Reading]:
    """Account one second ``[state.next_ts, state.next_ts + 1)`` of power and emit its reading."""
    ac_kwh, geyser_kwh, overall_kwh = _registers(state, (ac_kw, geyser_kw, overall_kw) if true_kw is None else true_kw)
    reading = Reading(
        meter=state.meter_id,
        seq=state.seq,
        ts=state.next_ts,
        ac_w=_w(ac_kw),
        geyser_w=_w(geyser_kw),
        overall_w=_w(overall_kw),
        ac_kwh=ac_kwh,
        geyser_kwh=geyser_kwh,
        overall_kwh=overall_kwh,
    )
    # Built directly, not with dataclasses.replace (a fleet steps 10,000 meters a second).
    return MeterState(state.meter_id, state.seq + 1, state.next_ts + 1, ac_kwh, geyser_kwh, overall_kwh), reading
