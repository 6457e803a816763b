"""simulator.meters.faults: each error type's transformation, exact and probabilistic rates, ground truth aligned with
the clean values, and time-keyed draws (any block equals the slice of its whole local days)."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from config.errors import ConfigError
from simulator.localday import day_span, days_covering
from simulator.meters.faults import (
    ALL_TYPES,
    LABELS,
    ORIGINAL_TYPES,
    ErrorType,
    FaultConfig,
    fault_day,
    faulted_seconds,
    inject,
    parse_error_types,
    stack,
)
from simulator.meters.fleet import fleet_specs
from simulator.profiles.block import FloatArray, MeterProfile
from simulator.profiles.factory import make_profile

UTC_ZONE = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")
DAY = date(2024, 1, 1)
T0 = 1_704_067_200  # 2024-01-01T00:00:00Z
SEED = 11


def clean_day(n: int = 86_400) -> FloatArray:
    """Distinct positive values, so every transformation is visible."""
    return np.random.default_rng(0).uniform(0.5, 5.0, size=(n, 3))


def profile(meter: str = "A", tz: ZoneInfo = UTC_ZONE) -> MeterProfile:
    spec = next(s for s in fleet_specs(["A", "B", "C"]) if s.meter_id == meter)
    return make_profile("classic", spec, tz, SEED)


def rng() -> np.random.Generator:
    return np.random.default_rng(42)


def test_error_type_labels() -> None:
    assert [t.label for t in ErrorType] == ["none", "negative", "spike", "missing", "stuck", "dropout"]
    assert LABELS[ErrorType.DROPOUT] == "dropout"
    assert ErrorType.NONE == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"every_s": 25, "probability": 0.1},
        {"every_s": 0},
        {"every_s": 86_401},
        {"probability": 0.0},
        {"probability": 1.5},
        {"every_s": 5, "types": ()},
        {"every_s": 5, "types": (ErrorType.NONE,)},
        {"every_s": 5, "types": (ErrorType.SPIKE, ErrorType.SPIKE)},
        {"every_s": 5, "stuck_s": (0, 3)},
        {"every_s": 5, "stuck_s": (10, 3)},
    ],
)
def test_config_validates_itself(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        FaultConfig(**kwargs)  # type: ignore[arg-type]


def test_parse_error_types() -> None:
    assert parse_error_types("negative, SPIKE,missing") == ORIGINAL_TYPES
    assert parse_error_types("all") == ALL_TYPES
    with pytest.raises(ConfigError, match="unknown error type 'bogus'"):
        parse_error_types("spike,bogus")


@pytest.mark.parametrize("every_s", [25, 7])
def test_every_n_is_exact(every_s: int) -> None:
    out = inject(clean_day(), T0, FaultConfig(every_s=every_s), rng())
    faulted_rows = np.flatnonzero((out.codes != ErrorType.NONE).any(axis=1))
    assert np.array_equal(faulted_rows, np.arange(0, 86_400, every_s))  # counted from local midnight
    assert (out.codes[faulted_rows] != ErrorType.NONE).all()  # every channel of those seconds
    assert set(np.unique(out.codes[faulted_rows])) == {int(t) for t in ORIGINAL_TYPES}


def test_probability_rate_within_tolerance() -> None:
    p = 0.01
    out = inject(clean_day(), T0, FaultConfig(probability=p), rng())
    count = int((out.codes != ErrorType.NONE).sum())
    expected = p * out.codes.size
    assert abs(count - expected) < 5 * np.sqrt(expected * (1 - p))


@pytest.mark.parametrize("kind", [ErrorType.NEGATIVE, ErrorType.SPIKE, ErrorType.MISSING])
def test_point_errors_transform_their_value(kind: ErrorType) -> None:
    clean = clean_day()
    out = inject(clean, T0, FaultConfig(every_s=10, types=(kind,)), rng())
    hit = out.codes == kind
    assert hit.sum() == 8_640 * 3
    assert set(np.unique(out.codes)) == {ErrorType.NONE, kind}
    assert np.array_equal(out.values_kw[~hit], clean[~hit])
    if kind is ErrorType.NEGATIVE:
        assert np.array_equal(out.values_kw[hit], -np.abs(clean[hit]))
    elif kind is ErrorType.SPIKE:
        factor = out.values_kw[hit] / clean[hit]
        assert factor.min() >= 10.0
        assert factor.max() <= 100.0
        assert factor.std() > 10  # drawn per value, not one factor
    else:
        assert np.isnan(out.values_kw[hit]).all()


def test_stuck_repeats_the_previous_value_for_a_run() -> None:
    clean = clean_day()
    out = inject(clean, T0, FaultConfig(every_s=100, types=(ErrorType.STUCK,), stuck_s=(5, 60)), rng())
    for col in range(3):
        stuck = out.codes[:, col] == ErrorType.STUCK
        starts = np.flatnonzero(stuck & ~np.r_[False, stuck[:-1]])
        ends = np.flatnonzero(stuck & ~np.r_[stuck[1:], False]) + 1
        assert np.array_equal(starts, np.arange(0, 86_400, 100))  # runs of <= 60 s never overlap here
        assert (ends - starts).min() >= 5
        assert (ends - starts).max() <= 60
        assert len(set(ends - starts)) > 10
        for start, end in zip(starts, ends, strict=True):
            held = clean[max(start - 1, 0), col]  # the day's first run holds its own first value
            assert (out.values_kw[start:end, col] == held).all()
        assert np.array_equal(out.values_kw[~stuck, col], clean[~stuck, col])


def test_a_later_stuck_fault_restarts_the_run() -> None:
    clean = clean_day(1000)
    out = inject(clean, T0, FaultConfig(every_s=20, types=(ErrorType.STUCK,), stuck_s=(50, 50)), rng())
    assert (out.codes == ErrorType.STUCK).all()
    assert (out.values_kw[20:40, 0] == clean[19, 0]).all()
    assert (out.values_kw[40:60, 0] == clean[39, 0]).all()


def test_dropout_takes_the_whole_second() -> None:
    out = inject(clean_day(), T0, FaultConfig(every_s=50, types=(ErrorType.DROPOUT, ErrorType.SPIKE)), rng())
    dropped = (out.codes == ErrorType.DROPOUT).any(axis=1)
    assert dropped.sum() > 1000
    assert (out.codes[dropped] == ErrorType.DROPOUT).all()
    assert np.isnan(out.values_kw[dropped]).all()
    assert not np.isnan(out.values_kw[~dropped]).any()


def test_every_type_appears_and_clean_values_where_none() -> None:
    clean = clean_day()
    out = inject(clean, T0, FaultConfig(probability=0.02, types=ALL_TYPES), rng())
    assert set(np.unique(out.codes)) == set(ErrorType)
    ok = out.codes == ErrorType.NONE
    assert np.array_equal(out.values_kw[ok], clean[ok])
    assert out.clean_kw is clean


def test_fault_day_is_deterministic_and_keyed_by_seed_meter_and_day() -> None:
    clean = clean_day()
    config = FaultConfig(probability=0.01, types=ALL_TYPES)
    first = fault_day(clean, config, SEED, (0,), DAY, T0)
    again = fault_day(clean, config, SEED, (0,), DAY, T0)
    assert np.array_equal(first.codes, again.codes)
    assert np.array_equal(first.values_kw, again.values_kw, equal_nan=True)
    for other in (
        fault_day(clean, config, SEED + 1, (0,), DAY, T0),
        fault_day(clean, config, SEED, (1,), DAY, T0),
        fault_day(clean, config, SEED, (0, 1), DAY, T0),
        fault_day(clean, config, SEED, (0,), date(2024, 1, 2), T0),
    ):
        assert not np.array_equal(first.codes, other.codes)


def test_channels_are_independent() -> None:
    out = inject(clean_day(), T0, FaultConfig(probability=0.05), rng())
    hit = out.codes != ErrorType.NONE
    assert not np.array_equal(hit[:, 0], hit[:, 1])
    assert not np.array_equal(hit[:, 1], hit[:, 2])


@pytest.mark.parametrize(
    ("tz", "start", "n"),
    [
        (UTC_ZONE, T0 + 3_600 * 23 + 1_234, 5_000),  # crosses midnight
        (UTC_ZONE, T0 + 17, 61),  # a minute inside a day
        (BERLIN, 1_711_839_600 - 7, 90_000),  # Berlin 2024-03-31, a 23-hour day, and on
    ],
)
def test_any_block_equals_the_slice_of_its_days(tz: ZoneInfo, start: int, n: int) -> None:
    config = FaultConfig(probability=0.02, types=ALL_TYPES, stuck_s=(30, 600))
    meter = profile("C", tz)
    block = faulted_seconds(meter, start, n, tz, config, SEED, (2,))
    assert block.start_s == start
    assert block.values_kw.shape == (n, 3)
    days = list(days_covering(start, n, tz))
    whole = [fault_day(stack(meter.block(a, b - a)), config, SEED, (2,), day, a) for day, a, b in days]
    window = slice(start - days[0][1], start - days[0][1] + n)
    assert np.array_equal(block.codes, np.concatenate([w.codes for w in whole])[window])
    assert np.array_equal(block.values_kw, np.concatenate([w.values_kw for w in whole])[window], equal_nan=True)
    assert np.array_equal(block.clean_kw, stack(meter.block(start, n)))


def test_block_matches_fault_day_of_the_profile() -> None:
    meter = profile("A")
    config = FaultConfig(every_s=25)
    start, end = day_span(DAY, UTC_ZONE)
    day = fault_day(stack(meter.block(start, end - start)), config, SEED, (0,), DAY, start)
    block = faulted_seconds(meter, start + 100, 1000, UTC_ZONE, config, SEED, (0,))
    assert np.array_equal(block.values_kw, day.values_kw[100:1100], equal_nan=True)
    assert np.array_equal(block.codes, day.codes[100:1100])


def test_empty_block() -> None:
    block = faulted_seconds(profile(), T0, 0, UTC_ZONE, FaultConfig(every_s=5), SEED, (0,))
    assert block.values_kw.shape == (0, 3)
    assert block.codes.shape == (0, 3)


def test_inject_into_given_arrays_is_the_same() -> None:
    """``out`` (a chunk's rows, filled in place) changes where the faulted values go, not what they are; arrays that
    held other values before are overwritten whole."""
    config = FaultConfig(every_s=7, types=ALL_TYPES)
    expected = inject(clean_day(), T0, config, rng())
    values, codes = np.full((86_400, 3), 9.0), np.full((86_400, 3), 5, dtype=np.int8)
    got = inject(clean_day(), T0, config, rng(), out=(values, codes))
    assert got.values_kw is values
    assert got.codes is codes
    np.testing.assert_array_equal(values, expected.values_kw)
    np.testing.assert_array_equal(codes, expected.codes)
