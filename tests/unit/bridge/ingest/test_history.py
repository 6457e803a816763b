"""bridge.ingest.history: ring storage, dedup, too-old readings, samples with gaps, watermark and waiting for it."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from bridge.ingest.history import History, MeterSummary
from config.wire import Reading

T0 = 1_704_067_200


def reading(ts: int, meter: str = "A", ac_w: float | None = 1500.0, seq: int | None = None) -> Reading:
    return Reading(meter, ts - T0 if seq is None else seq, ts, ac_w, 0.0, 2000.0, 0.0, 0.0, 0.0)


def test_empty() -> None:
    history = History(60)
    assert history.meters() == []
    assert history.watermark("A") is None
    assert history.first_ts("A") is None
    samples, present = history.samples("A", T0, T0 + 3)
    assert present == 0
    assert samples.shape == (3, 3)
    assert np.isnan(samples).all()
    assert history.summary("A") == MeterSummary("A", "unknown", None, None, None, 0, 0, 0)


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity"):
        History(0)


def test_add_dedup_and_watermark() -> None:
    history = History(60)
    assert history.add(reading(T0 + 5))
    assert not history.add(reading(T0 + 5))  # QoS 1 redelivery
    assert history.add(reading(T0 + 3))  # late, but still held
    assert history.watermark("A") == T0 + 6
    assert history.first_ts("A") == T0 + 3
    summary = history.summary("A")
    assert (summary.received, summary.duplicates, summary.too_old, summary.last_seq) == (2, 1, 0, 5)
    assert history.meters() == ["A"]


def test_too_old_and_ring_wrap() -> None:
    history = History(10)
    for ts in range(T0, T0 + 25):
        assert history.add(reading(ts))
    assert history.first_ts("A") == T0 + 15
    assert history.watermark("A") == T0 + 25
    assert not history.add(reading(T0 + 14))  # slot overwritten: too old
    assert not history.add(reading(T0 + 3))
    assert not history.add(reading(T0 + 20))  # still held: a duplicate
    summary = history.summary("A")
    assert (summary.received, summary.duplicates, summary.too_old) == (25, 1, 2)
    samples, present = history.samples("A", T0 + 10, T0 + 25)
    assert present == 10
    assert np.isnan(samples[:5]).all()
    assert np.all(samples[5:, 0] == 1.5)


def test_samples_with_gaps_and_nulls() -> None:
    history = History(100)
    history.add(reading(T0, ac_w=1000.0))
    history.add(reading(T0 + 2, ac_w=None))
    history.add(reading(T0 + 3, ac_w=500.0))
    samples, present = history.samples("A", T0 - 1, T0 + 5)
    assert present == 3
    assert np.array_equal(
        samples[:, 0], np.array([np.nan, 1.0, np.nan, np.nan, 0.5, np.nan]), equal_nan=True
    )  # kW; a null channel is NaN like a missing second
    assert samples[1].tolist() == [1.0, 0.0, 2.0]


def test_meters_are_separate_and_status() -> None:
    history = History(100)
    history.add(reading(T0, meter="B"))
    history.set_status("C", "online")
    history.set_status("B", "offline")
    assert history.meters() == ["B", "C"]
    assert history.watermark("A") is None
    assert history.watermark("B") == T0 + 1
    assert history.summary("B").status == "offline"
    assert history.summary("C") == MeterSummary("C", "online", None, None, None, 0, 0, 0)


def test_wait_returns_at_once_when_already_beyond() -> None:
    history = History(100)
    history.add(reading(T0 + 9))
    assert history.wait_for_watermark("A", None, timeout=10.0) == T0 + 10
    assert history.wait_for_watermark("A", T0 + 9, timeout=10.0) == T0 + 10


def test_wait_times_out() -> None:
    history = History(100)
    assert history.wait_for_watermark("A", None, timeout=0.05) is None
    history.add(reading(T0 + 9))
    assert history.wait_for_watermark("A", T0 + 10, timeout=0.05) == T0 + 10
    history.add(reading(T0 + 5))  # older: the watermark does not move
    assert history.wait_for_watermark("A", T0 + 10, timeout=0.05) == T0 + 10


@pytest.mark.parametrize(("prefill", "beyond"), [(False, None), (True, T0 + 1)])
def test_a_new_reading_wakes_a_waiter(prefill: bool, beyond: int | None) -> None:
    history = History(100)
    if prefill:
        history.add(reading(T0))
    waiting = threading.Event()
    result: list[int | None] = []

    def waiter() -> None:
        waiting.set()
        result.append(history.wait_for_watermark("A", beyond, timeout=30.0))

    thread = threading.Thread(target=waiter, daemon=True)
    thread.start()
    assert waiting.wait(5.0)
    history.add(reading(T0 + 99, meter="B"))  # another meter's reading does not end A's wait
    thread.join(0.05)
    assert thread.is_alive()
    history.add(reading(T0 + 41))
    thread.join(10.0)  # far below the waiter's 30 s timeout: only a notification ends it this early
    assert not thread.is_alive()
    assert result == [T0 + 42]


def test_wait_until_wakes_only_the_waiters_whose_watermark_came() -> None:
    import threading as _threading

    from config.wire import Reading as _Reading

    history = History(3600)
    base = 1_704_067_200

    def add(ts: int) -> None:
        history.add(_Reading("A", ts - base, ts, 0.0, 0.0, 1000.0, 0.0, 0.0, 0.0))

    add(base)
    results: dict[str, int | None] = {}
    near = _threading.Thread(target=lambda: results.__setitem__("near", history.wait_until("A", base + 3, 10)))
    far = _threading.Thread(target=lambda: results.__setitem__("far", history.wait_until("A", base + 10, 10)))
    near.start()
    far.start()
    for ts in range(base + 1, base + 3):
        add(ts)
    near.join(timeout=5)
    assert results.get("near") == base + 3
    assert far.is_alive()  # not woken by readings that do not reach its target
    for ts in range(base + 3, base + 10):
        add(ts)
    far.join(timeout=5)
    assert results.get("far") == base + 10
    assert history._waiters["A"] == {}  # every target reached: nothing left waiting


def test_a_waiter_that_times_out_leaves_the_event_to_the_others_until_the_watermark_passes() -> None:
    import threading as _threading

    history = History(3600)
    assert history.wait_until("A", T0 + 10, 0.01) is None  # timed out: its target's event stays for the others
    shared = history._waiters["A"][T0 + 10]
    results: list[int | None] = []
    patient = _threading.Thread(target=lambda: results.append(history.wait_until("A", T0 + 10, 30)))
    patient.start()
    assert history.wait_until("A", T0 + 10, 0.01) is None
    assert history._waiters["A"] == {T0 + 10: shared}  # one event per target, however many wait or left
    history.add(reading(T0 + 9))
    patient.join(10.0)
    assert results == [T0 + 10]
    assert history._waiters["A"] == {}  # the watermark passed it


def _registered(waiters: dict[str, dict[int, threading.Event]], thread: threading.Thread) -> bool:
    """Whether ``thread`` waits on an event of meter A in ``waiters`` (waited for up to 5 s)."""
    for _ in range(500):
        if waiters.get("A"):
            return True
        thread.join(0.01)
    return False


def test_a_late_reading_wakes_the_waiters_that_asked_for_it_and_only_them() -> None:
    history = History(3600)
    history.add(reading(T0 + 10))
    results: dict[str, int | None] = {}
    seen = history.late_revision("A")
    late = threading.Thread(target=lambda: results.__setitem__("late", history.wait_until("A", T0 + 60, 30, seen)))
    plain = threading.Thread(target=lambda: results.__setitem__("plain", history.wait_until("A", T0 + 60, 30)))
    late.start()
    assert _registered(history._late_waiters, late)
    plain.start()
    assert _registered(history._waiters, plain)
    history.add(reading(T0 + 12))  # the watermark moves, short of the target: nobody wakes
    late.join(0.05)
    assert late.is_alive()
    history.add(reading(T0 + 5))  # late: below the watermark
    late.join(10.0)  # far below its 30 s timeout: only the late reading ends it this early
    assert not late.is_alive()
    assert results["late"] == T0 + 13
    plain.join(0.05)
    assert plain.is_alive()  # it did not ask for late readings
    history.add(reading(T0 + 59))
    plain.join(10.0)
    assert results["plain"] == T0 + 60
    assert history._late_waiters["A"] == {}
    assert history._waiters["A"] == {}


def test_a_late_reading_before_the_wait_returns_at_once() -> None:
    history = History(3600)
    history.add(reading(T0 + 10))
    seen = history.late_revision("A")
    history.add(reading(T0 + 5))
    assert history.late_revision("A") == seen + 1
    assert history.wait_until("A", T0 + 60, 30, seen) == T0 + 11  # without waiting the 30 s
    assert history._late_waiters.get("A") in (None, {})


def test_readings_wake_nobody_without_waiters() -> None:
    history = History(3600)
    history.set_status("A", "online")
    assert history.wait_for_watermark("A", None, timeout=0.01) is None  # timed out: its event stays until passed
    assert history._next_wake == {"A": 0}
    history.add(reading(T0))
    assert history._next_wake == {}  # woken and gone: later readings compare with nothing
    assert history._waiters["A"] == {}
