"""simulator.live.schedule: jitter offsets, the due queue, connect pacing, back-off and the lateness histogram."""

from __future__ import annotations

import pytest

from simulator.live.schedule import ConnectPacer, DueQueue, LatenessHistogram, backoff_delay, jitter_offset
from simulator.meters.fleet import fleet_specs


def test_jitter_offsets_are_fixed_by_the_id_and_within_a_second() -> None:
    ids = [spec.meter_id for spec in fleet_specs(["A", "B", "C"], 3000)]
    offsets = [jitter_offset(meter_id) for meter_id in ids]
    assert offsets == [jitter_offset(meter_id) for meter_id in ids]  # a restarted meter keeps its offset
    assert all(0.0 <= offset < 1.0 for offset in offsets)
    assert len(set(offsets)) == len(offsets)


def test_jitter_offsets_spread_over_the_second() -> None:
    offsets = [jitter_offset(spec.meter_id) for spec in fleet_specs(["A", "B", "C"], 10_000)]
    tenths = [0] * 10
    for offset in offsets:
        tenths[int(offset * 10)] += 1
    assert all(800 <= n <= 1200 for n in tenths)  # about 1,000 meters in each tenth of a second


def test_due_queue_pops_only_what_is_due_earliest_first() -> None:
    queue = DueQueue()
    for at, key in [(3.0, "c"), (1.0, "a"), (2.0, "b"), (5.0, "e")]:
        queue.push(at, key)
    assert queue.next_at() == 1.0
    assert queue.pop_due(0.5) == []
    assert queue.pop_due(2.0) == ["a", "b"]
    assert queue.next_at() == 3.0
    assert len(queue) == 2


def test_due_queue_keeps_insertion_order_on_ties_and_respects_a_limit() -> None:
    queue = DueQueue()
    for key in "xyz":
        queue.push(1.0, key)
    assert queue.pop_due(1.0, limit=2) == ["x", "y"]
    assert queue.pop_due(1.0) == ["z"]
    assert queue.next_at() is None


def test_pacer_lets_through_at_most_its_rate() -> None:
    pacer = ConnectPacer(500.0, now=0.0)
    assert pacer.take(0.0, 10_000) == 125  # a burst of a quarter of a second's allowance
    assert pacer.take(0.0, 10_000) == 0
    granted = sum(pacer.take(t / 100, 10_000) for t in range(1, 101))  # one second in steps of 10 ms
    assert granted == 500
    assert pacer.take(1.0, 10_000) == 0
    assert pacer.next_at() == pytest.approx(1.002)
    assert pacer.take(1.5, 10_000) == 125  # a slow pass gets up to the burst at once


def test_pacer_never_grants_more_than_wanted_and_refills_up_to_its_burst() -> None:
    pacer = ConnectPacer(100.0, now=0.0)
    assert pacer.take(0.0, 3) == 3
    assert pacer.take(100.0, 10_000) == 25  # idle for long: still only the burst


def test_pacer_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="rate_per_s"):
        ConnectPacer(0.0)


def test_backoff_delay_is_a_random_share_of_the_backoff() -> None:
    assert backoff_delay(2.0, 0.0) == 0.0
    assert backoff_delay(2.0, 0.5) == 1.0
    assert backoff_delay(2.0, 0.999) < 2.0


def test_lateness_histogram_percentiles_and_within_bound() -> None:
    hist = LatenessHistogram()
    hist.add(0.0105, n=990)  # 10.5 ms
    hist.add(0.150, n=9)
    hist.add(0.350)
    hist.add(-0.002)  # early counts as on time
    summary = hist.summary(0.2)
    assert summary.count == 1001
    assert summary.within == 1000
    assert summary.p50_s == pytest.approx(0.011)  # upper edge of the 1 ms bucket
    assert summary.p999_s == pytest.approx(0.151)
    assert summary.max_s == pytest.approx(0.350)
    assert summary.within_fraction == pytest.approx(1000 / 1001)
    assert "within 200ms: 99.900%" in summary.line()


def test_held_readings_count_as_late() -> None:
    hist = LatenessHistogram()
    hist.add(0.001, n=9)
    hist.add_held(1)
    assert hist.summary(0.2).within_fraction == pytest.approx(0.9)
    assert LatenessHistogram().summary().within_fraction == 1.0
