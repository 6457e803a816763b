"""bridge.http.ratelimit: token buckets per address on a fake clock (``now_s`` is a plain number here)."""

from __future__ import annotations

import pytest

from bridge.http.ratelimit import DEFAULT_BURST, DEFAULT_RATE_PER_S, RateLimit, TokenBuckets


def test_a_burst_then_one_token_per_interval() -> None:
    buckets = TokenBuckets(RateLimit(burst=3, rate_per_s=2.0))
    assert [buckets.take("a", 100.0) for _ in range(3)] == [0, 0, 0]
    assert buckets.take("a", 100.0) == 1  # half a second to the next token: Retry-After rounds up to whole seconds
    assert buckets.take("a", 100.5) == 0
    assert buckets.take("a", 100.5) == 1
    assert buckets.take("a", 101.0) == 0


def test_retry_after_is_the_whole_seconds_to_the_next_token() -> None:
    buckets = TokenBuckets(RateLimit(burst=1, rate_per_s=0.1))
    assert buckets.take("a", 0.0) == 0
    assert buckets.take("a", 0.0) == 10
    assert buckets.take("a", 2.5) == 8  # 7.5 s left
    assert buckets.take("a", 9.99) == 1
    assert buckets.take("a", 10.0) == 0


def test_a_refused_request_takes_nothing() -> None:
    buckets = TokenBuckets(RateLimit(burst=1, rate_per_s=1.0))
    buckets.take("a", 0.0)
    for _ in range(100):  # hammering while empty does not push the next token further away
        assert buckets.take("a", 0.5) == 1
    assert buckets.take("a", 1.0) == 0


def test_addresses_are_independent() -> None:
    buckets = TokenBuckets(RateLimit(burst=1, rate_per_s=1.0))
    assert buckets.take("a", 0.0) == 0
    assert buckets.take("a", 0.0) == 1
    assert buckets.take("b", 0.0) == 0


def test_never_more_than_the_burst_after_a_long_idle() -> None:
    buckets = TokenBuckets(RateLimit(burst=2, rate_per_s=1.0, max_addresses=10))
    buckets.take("a", 0.0)
    assert [buckets.take("a", 1e6) for _ in range(3)] == [0, 0, 1]


def test_a_clock_stepping_back_mints_no_tokens() -> None:
    buckets = TokenBuckets(RateLimit(burst=1, rate_per_s=1.0))
    assert buckets.take("a", 100.0) == 0
    assert buckets.take("a", 50.0) == 1
    assert buckets.take("a", 100.0) == 1
    assert buckets.take("a", 101.0) == 0


def test_the_table_is_capped() -> None:
    buckets = TokenBuckets(RateLimit(burst=1, rate_per_s=0.001, max_addresses=100))
    for i in range(10_000):
        buckets.take(f"10.0.{i // 256}.{i % 256}", 0.0)
        assert len(buckets) <= 100
    assert buckets.take("10.0.39.15", 0.0) == 1000  # the most recent addresses are still held
    assert buckets.take("10.0.0.0", 0.0) == 0  # the least recently seen were dropped first


def test_refilled_buckets_are_forgotten() -> None:
    buckets = TokenBuckets(RateLimit(burst=2, rate_per_s=1.0))  # empty to full in 2 s
    for i in range(50):
        buckets.take(f"a{i}", 0.0)
    buckets.take("late", 1.0)
    assert len(buckets) == 51
    buckets.take("later", 2.0)  # the 50 from t=0 are full again: they hold nothing a new bucket would not
    assert len(buckets) == 2


def test_defaults_let_a_widget_be() -> None:
    limit = RateLimit()
    assert (limit.burst, limit.rate_per_s) == (DEFAULT_BURST, DEFAULT_RATE_PER_S) == (60, 10.0)
    buckets = TokenBuckets()
    assert all(buckets.take("widget", t * 0.2) == 0 for t in range(1_000))  # a setup every 0.2 s, forever


@pytest.mark.parametrize(
    "kwargs",
    [{"burst": 0}, {"rate_per_s": 0.0}, {"rate_per_s": -1.0}, {"rate_per_s": float("nan")}, {"max_addresses": 0}],
)
def test_bad_limits_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        RateLimit(**kwargs)  # type: ignore[arg-type]
