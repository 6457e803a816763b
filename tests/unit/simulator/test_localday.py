"""simulator.localday: day spans in UTC, +05:30 and on Berlin's DST days; wall clock <-> elapsed seconds."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from config.localtime import local_date
from simulator.localday import local_day

BERLIN = ZoneInfo("Europe/Berlin")
KOLKATA = ZoneInfo("Asia/Kolkata")


def test_plain_days() -> None:
    utc = local_day(date(2024, 1, 1), ZoneInfo("UTC"))
    assert (utc.start_s, utc.n_s, utc.shift_at_s, utc.shift_s) == (1_704_067_200, 86_400, 86_400, 0)
    ist = local_day(date(2024, 1, 1), KOLKATA)
    assert ist.start_s == int(datetime(2023, 12, 31, 18, 30, tzinfo=UTC).timestamp())
    assert ist.n_s == 86_400
    assert ist.weekday
    assert ist.ordinal == date(2024, 1, 1).toordinal()
    assert not local_day(date(2024, 1, 6), KOLKATA).weekday  # a Saturday


def test_spring_forward() -> None:
    day = local_day(date(2024, 3, 31), BERLIN)
    assert day.n_s == 23 * 3600
    assert (day.shift_at_s, day.shift_s) == (2 * 3600, 3600)
    assert (day.dst_before_h, day.dst_after_h) == (0.0, 1.0)
    assert day.elapsed_s(1.5) == 5400
    assert day.elapsed_s(2.5) == 7200  # 02:30 does not exist: the jump instant
    assert day.elapsed_s(3.0) == 7200
    assert day.elapsed_s(7.0) == 6 * 3600
    assert day.elapsed_s(24.0) == day.n_s
    assert day.wall_h(np.array([7199.0, 7200.0])).tolist() == [7199 / 3600, 3.0]


def test_fall_back() -> None:
    day = local_day(date(2024, 10, 27), BERLIN)
    assert day.n_s == 25 * 3600
    assert (day.shift_at_s, day.shift_s) == (3 * 3600, -3600)
    assert day.elapsed_s(2.5) == 9000  # the first 02:30
    assert day.elapsed_s(4.0) == 5 * 3600
    assert day.wall_h(np.array([3 * 3600.0])).tolist() == [2.0]  # 03:00 CEST becomes 02:00 CET
    assert day.dst_h(np.array([0.0, 3 * 3600.0])).tolist() == [1.0, 0.0]


@pytest.mark.parametrize("tz", [BERLIN, KOLKATA, ZoneInfo("America/Phoenix")])
def test_local_date_matches_spans(tz: ZoneInfo) -> None:
    for d in (date(2024, 3, 31), date(2024, 6, 1), date(2024, 10, 27)):
        day = local_day(d, tz)
        assert local_date(day.start_s, tz) == d
        assert local_date(day.start_s + day.n_s - 1, tz) == d
        assert local_date(day.start_s - 1, tz) != d
