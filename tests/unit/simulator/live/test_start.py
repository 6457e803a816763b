"""simulator.live.start: a fresh start with and without warm-up, a restart that resumes from the outbox (no second
warm-up), the clock kept or moved to the resume point, the retention and warm-up settings and their refusals."""

from __future__ import annotations

import pytest

from config.errors import ConfigError
from config.settings import DEFAULT_WARMUP_S, load_settings
from simulator.live.checkpoint import DEFAULT_RETENTION_S, FLEET_MODE_RETENTION_S, HORIZON_LEAD_S
from simulator.live.start import WARMUP_HOLD_S, outbox_retention, plan_start, warmup_seconds
from simulator.meters.meter import MeterState

T0 = 1_717_200_000.0  # where the clock would start (simulated epoch seconds)


def _state(meter_id: str, next_ts: int, seq: int = 42) -> MeterState:
    return MeterState(meter_id, seq, next_ts, 1.0, 2.0, 3.0)


def test_a_fresh_start_without_warmup_starts_every_meter_at_the_clock() -> None:
    plan = plan_start(T0, 1.0, ["A", "B"], {}, 0)
    assert plan.sim_start == T0
    assert plan.fresh == ("A", "B")
    assert (plan.warmup_s, plan.hold_s, plan.warmup_start) == (0, 0.0, T0)
    assert plan.resume_at == 0
    assert not plan.resuming


def test_a_fresh_start_with_warmup_begins_the_meters_in_the_past_and_holds_it() -> None:
    plan = plan_start(T0, 1.0, ["A", "B", "C"], {}, 86_400)
    assert plan.sim_start == T0  # the clock still starts now: only the meters begin earlier
    assert plan.fresh == ("A", "B", "C")
    assert plan.warmup_s == 86_400
    assert plan.warmup_start == T0 - 86_400
    assert plan.hold_s == WARMUP_HOLD_S > 0
    assert not plan.resuming


def test_a_restart_with_the_same_start_resumes_at_the_newest_second_on_record_without_a_second_warmup() -> None:
    lasts = {"A": _state("A", int(T0) + 3_600), "B": _state("B", int(T0) + 3_590)}
    plan = plan_start(T0, 1.0, ["A", "B"], lasts, 86_400)
    assert plan.resume_at == int(T0) + 3_600
    assert plan.sim_start == T0 + 3_600  # further ahead than the horizon's lead: the clock moves there
    assert plan.resuming
    assert plan.fresh == ()
    assert (plan.warmup_s, plan.hold_s, plan.warmup_start) == (0, 0.0, plan.sim_start)


def test_a_restart_right_after_a_kill_keeps_the_wall_clock_within_the_horizon_lead() -> None:
    ahead = int(T0) + int(HORIZON_LEAD_S)  # at most the lead ahead at speed 1: the meters wait, the clock stays
    plan = plan_start(T0, 1.0, ["A"], {"A": _state("A", ahead)}, 0)
    assert plan.sim_start == T0
    assert plan.resume_at == ahead
    assert plan.resuming
    # At speed 10 the lead is 10 times longer in simulated seconds: the same restart keeps the clock too.
    far = int(T0) + int(HORIZON_LEAD_S * 10)
    assert plan_start(T0, 10.0, ["A"], {"A": _state("A", far)}, 0).sim_start == T0
    assert plan_start(T0, 1.0, ["A"], {"A": _state("A", far)}, 0).sim_start == float(far)


def test_a_restart_long_after_resumes_in_the_past_of_the_clock() -> None:
    plan = plan_start(T0, 1.0, ["A"], {"A": _state("A", int(T0) - 600)}, 0)
    assert plan.sim_start == T0  # the clock keeps to the wall; the meter continues at its own second
    assert plan.resume_at == int(T0) - 600
    assert not plan.resuming  # nothing on record at or after the clock's first second


def test_only_the_meters_the_outbox_does_not_know_warm_up() -> None:
    lasts = {"B": _state("B", int(T0) - 10)}
    plan = plan_start(T0, 1.0, ["A", "B", "C"], lasts, 3_600)
    assert plan.fresh == ("A", "C")
    assert plan.warmup_s == 3_600
    assert plan.hold_s == WARMUP_HOLD_S


def test_the_outbox_retention_is_a_week_for_households_an_hour_for_a_fleet_or_as_given() -> None:
    assert outbox_retention(None, fleet=False) == DEFAULT_RETENTION_S == 7 * 86_400
    assert outbox_retention(None, fleet=True) == FLEET_MODE_RETENTION_S == 3_600
    assert outbox_retention("12h", fleet=True) == 12 * 3_600


@pytest.mark.parametrize("text", ["0", "0s", "forever", "400d"])
def test_a_bad_outbox_retention_is_a_config_error_naming_it(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        outbox_retention(text, fleet=False)
    assert caught.value.key == "--outbox-retention"


def test_fleet_defaults_the_warmup_to_zero_and_households_to_a_day() -> None:
    settings = load_settings({})
    assert warmup_seconds(None, settings, True, FLEET_MODE_RETENTION_S) == 0
    assert warmup_seconds(None, settings, False, DEFAULT_RETENTION_S) == DEFAULT_WARMUP_S == 86_400


def test_a_warmup_longer_than_the_outbox_retention_is_refused_naming_fleet_warmup() -> None:
    settings = load_settings({"FLEET_WARMUP": "2h"})
    with pytest.raises(ConfigError, match="longer than the outbox's retention") as caught:
        warmup_seconds(None, settings, True, FLEET_MODE_RETENTION_S)
    assert caught.value.key == "FLEET_WARMUP"
    assert "at most 3600 s" in str(caught.value)
