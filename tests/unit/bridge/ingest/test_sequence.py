"""bridge.ingest.sequence and the history that applies it: one meter's messages, however forged, move its sequence and
clock only as far as the meter running for real could (attacks from issue 11, each against a fake wall clock)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.ingest.history import History
from bridge.ingest.ring import CONFLICT, DUPLICATE, STORED, TOO_OLD
from bridge.ingest.sequence import (
    CONFIRM_READINGS,
    CONFIRM_WALL_S,
    FUTURE,
    FUTURE_SKEW_S,
    MAX_SEQ_GAP,
    SEQ_JUMP,
    SEQ_REUSED,
    MeterClock,
    SeqTracker,
    skew_s,
)
from bridge.ingest.store import ReadingStore
from config.wire import Reading

T0 = 1_704_067_200
YEAR = 365 * 86_400


def reading(seq: int, ts: int, overall_w: float = 2000.0, meter: str = "A") -> Reading:
    return Reading(meter, seq, ts, 1500.0, 0.0, overall_w, 0.0, 0.0, seq % 10**6 / 3600)


class Wall:
    """A wall clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def live(history: History, wall: Wall, seconds: int, first_seq: int = 0, meter: str = "A") -> int:
    """``seconds`` readings, one a wall second (speed 1), from ``first_seq`` at ``T0 + first_seq``; the next seq."""
    for seq in range(first_seq, first_seq + seconds):
        assert history.put(reading(seq, T0 + seq, meter=meter)) == STORED
        wall.now += 1.0
    return first_seq + seconds


@pytest.fixture
def wall() -> Wall:
    return Wall()


@pytest.fixture
def history(wall: Wall) -> History:
    return History(3600, clock=wall)


# --- the sequence -------------------------------------------------------------------------------------------------


def test_gaps_repairs_and_backlog() -> None:
    seqs = SeqTracker()
    for seq in (0, 1, 2, 5, 6, 9):
        assert seqs.judge(seq, T0 + seq, newest=True) is None
        seqs.see(seq, T0 + seq)
    assert (seqs.highest, seqs.gaps, seqs.open) == (9, [[3, 4], [7, 8]], 4)
    seqs.see(4, T0 + 4)
    assert seqs.fill(7)
    assert not seqs.fill(7)
    assert (seqs.gaps, seqs.open, seqs.repaired) == ([[3, 3], [8, 8]], 2, 2)


def test_an_older_backlog_arriving_after_newer_readings_is_a_gap_not_a_restart() -> None:
    seqs = SeqTracker()
    for seq in range(200, 400):  # live readings first (the meter's warm-up or outbox backlog still on its way)
        seqs.see(seq, T0 + seq)
    assert seqs.judge(0, T0, newest=False) is None
    seqs.see(0, T0)
    assert (seqs.lowest, seqs.gaps, seqs.open, seqs.restarts) == (0, [[1, 199]], 199, 0)
    for seq in range(1, 200):
        seqs.see(seq, T0 + seq)
    assert (seqs.gaps, seqs.open, seqs.repaired, seqs.restarts) == ([], 0, 199, 0)


def test_a_seq_may_not_run_ahead_of_time() -> None:
    seqs = SeqTracker()
    seqs.see(100, T0 + 100)
    assert seqs.judge(150, T0 + 150, newest=True) is None  # 50 seconds, 50 readings: a plausible gap
    assert seqs.judge(150, T0 + 200, newest=True) is None  # dropouts: time ran further than seq
    assert seqs.judge(100 + 10**9, T0 + 101, newest=True) == SEQ_JUMP  # issue 11's jump
    assert seqs.judge(100 + 2**62, T0 + 101, newest=True) == SEQ_JUMP
    assert seqs.judge(100 + MAX_SEQ_GAP + 1, T0 + 100 + MAX_SEQ_GAP + 1, newest=True) == SEQ_JUMP  # beyond replay
    assert seqs.judge(0, T0 + 50, newest=False) == SEQ_JUMP  # 100 seqs back in 50 s of time: not from this meter
    assert seqs.judge(0, T0, newest=False) is None  # 100 back in 100 s: an older backlog
    assert seqs.judge(100, T0 + 101, newest=True) == SEQ_REUSED  # the current seq for a newer second
    assert (seqs.highest, seqs.gaps) == (100, [])  # judging changes nothing


def test_a_missing_seq_fills_its_gap_only_for_a_second_that_fits() -> None:
    seqs = SeqTracker()
    seqs.see(0, T0)
    seqs.see(100, T0 + 100)  # 1..99 missing, for seconds T0 + 1 .. T0 + 99
    assert seqs.judge(50, T0 + 50, newest=False) is None
    assert seqs.judge(50, T0 + 200, newest=True) == SEQ_REUSED  # a newer second: not where seq 50 belongs
    assert seqs.judge(50, T0 + 99 + 2 * 10, newest=False) == SEQ_REUSED  # after seq 100's second
    assert seqs.judge(50, T0 - 20, newest=False) == SEQ_REUSED  # before seq 0's second
    assert seqs.gaps == [[1, 99]]


def test_a_candidate_timeline_is_taken_only_when_confirmed_and_uninterrupted() -> None:
    seqs = SeqTracker()
    for seq in range(1000):
        seqs.see(seq, T0 + seq)
    wall = 0.0
    for i in range(CONFIRM_READINGS - 1):  # a meter that lost its state: seq 0, 1, 2... for new seconds
        assert not seqs.contradicted(i, T0 + 2000 + i, wall)
        wall += CONFIRM_WALL_S
    assert seqs.contradicted(CONFIRM_READINGS - 1, T0 + 2000 + CONFIRM_READINGS - 1, wall)
    last = CONFIRM_READINGS - 1
    assert (seqs.highest, seqs.lowest, seqs.restarts) == (last, 0, 1)
    assert seqs.gaps == [[0, last - 1]]  # the readings rejected meanwhile: replays bring them


def test_a_candidate_needs_wall_time_and_consecutive_readings() -> None:
    seqs = SeqTracker()
    seqs.see(1000, T0 + 1000)
    for i in range(10 * CONFIRM_READINGS):  # many readings at once: not enough wall time
        assert not seqs.contradicted(i, T0 + 2000 + i, 0.0)
    for i in range(10 * CONFIRM_READINGS):  # over a long time, but never consecutive
        assert not seqs.contradicted(7, T0 + 2000 + i, 100.0 * i)
    assert (seqs.highest, seqs.restarts) == (1000, 0)


# --- the clock ----------------------------------------------------------------------------------------------------


def test_the_clock_allows_the_skew_ahead_of_the_newest_reading_plus_elapsed_time() -> None:
    clock = MeterClock(speed=10.0)
    assert clock.plausible(T0 + YEAR, 0.0)  # nothing known yet
    clock.anchor(T0, 100.0)
    assert clock.estimate(130.0) == T0 + 300
    assert clock.plausible(T0 + 300 + int(clock.skew_s), 130.0)
    assert not clock.plausible(T0 + 301 + int(clock.skew_s), 130.0)
    assert skew_s(1.0) == FUTURE_SKEW_S
    assert skew_s(1000.0) > FUTURE_SKEW_S  # fast simulations: thirty wall seconds of it
    with pytest.raises(ValueError, match="speed"):
        MeterClock(0.0)


def test_a_late_delivery_never_sets_the_clock_back() -> None:
    """Seen on the NATS cluster: the bridge's QoS 1 messages redelivered 30 s late (the ack wait) after it lost its
    node; the meter's next live reading, 30 s x speed newer, was rejected as in the future."""
    clock = MeterClock(speed=20.0)
    clock.anchor(T0, 100.0)
    clock.anchor(T0 + 5, 130.0)  # made at wall 100.25, delivered at 130
    assert clock.estimate(130.0) == T0 + 600
    assert clock.plausible(T0 + 600 + int(clock.skew_s), 130.0)  # its live readings right after it
    clock.anchor(T0 + 700, 131.0)  # a newer second than the estimate moves it on
    assert clock.estimate(131.0) == T0 + 700


# --- the attacks, through History ---------------------------------------------------------------------------------


def test_a_huge_seq_jump_is_rejected_and_opens_no_gap(history: History, wall: Wall) -> None:
    nxt = live(history, wall, 60)
    for jump in (10**9, 2**62):
        assert history.put(reading(nxt - 1 + jump, T0 + nxt)) == SEQ_JUMP
    assert history.gaps("A") == []
    assert history.summary("A").gaps_open == 0
    live(history, wall, 60, nxt)  # the meter goes on as if nothing happened
    assert history.summary("A").last_seq == nxt + 59
    assert history.summary("A").seq_restarts == 0


def test_a_future_ts_is_rejected_and_the_meter_goes_on(history: History, wall: Wall, tmp_path: Path) -> None:
    nxt = live(history, wall, 60)
    assert history.put(reading(nxt, T0 + nxt + YEAR)) == FUTURE
    assert history.watermark("A") == T0 + nxt  # not moved
    nxt = live(history, wall, 60, nxt)  # every later real reading is stored (was: all dropped as too old)
    assert history.summary("A").received == 120
    assert history.summary("A").too_old == 0


def test_one_reading_moves_the_watermark_at_most_the_skew(history: History, wall: Wall) -> None:
    nxt = live(history, wall, 10)
    ahead = T0 + nxt + FUTURE_SKEW_S  # the newest second, one wall second since, plus the skew: still plausible
    assert history.put(reading(nxt, ahead + 1)) == FUTURE
    assert history.put(reading(nxt, ahead)) == STORED


def test_the_current_seq_for_a_newer_second_is_rejected_not_a_restart(history: History, wall: Wall) -> None:
    nxt = live(history, wall, 600)
    assert history.put(reading(nxt - 1, T0 + nxt)) == SEQ_REUSED
    assert history.put(reading(nxt - 500, T0 + nxt, overall_w=-1.0)) == SEQ_REUSED  # 500 back
    live(history, wall, 60, nxt)
    summary = history.summary("A")
    assert (summary.seq_restarts, summary.gaps_open, summary.last_seq) == (0, 0, nxt + 59)
    values, present = history.samples("A", T0 + nxt, T0 + nxt + 1)
    assert present == 1
    assert values[0, 2] == 2.0  # the real reading of that second, not the forged one


def test_a_same_second_with_other_values_never_replaces_the_reading_held(history: History, wall: Wall) -> None:
    live(history, wall, 10)
    assert history.put(reading(5, T0 + 5, overall_w=9999.0)) == CONFLICT
    assert history.put(reading(4, T0 + 5)) == CONFLICT  # another seq
    assert history.put(reading(5, T0 + 5)) == DUPLICATE  # the same reading again
    values, _ = history.samples("A", T0 + 5, T0 + 6)
    assert values[0, 2] == 2.0


def test_replays_of_seconds_held_already_still_close_their_gap(history: History, wall: Wall) -> None:
    """A gap whose readings are held (the seq tracker missed them, e.g. it was reset) closes when they are replayed."""
    live(history, wall, 10)
    ring = history._rings["A"]
    ring.seqs.gaps = [[3, 6]]  # as a reset tracker would have it
    for seq in range(3, 7):
        assert history.put(reading(seq, T0 + seq)) == DUPLICATE
    assert history.gaps("A") == []
    assert history.summary("A").gaps_repaired == 4


def test_too_old_is_reported(wall: Wall) -> None:
    history = History(60, clock=wall)
    live(history, wall, 100)
    assert history.put(reading(0, T0)) == TOO_OLD
    assert history.summary("A").too_old == 1


def test_a_meter_that_lost_its_state_is_taken_as_restarted_after_confirmation(history: History, wall: Wall) -> None:
    nxt = live(history, wall, 100)
    outcomes = []
    for seq in range(CONFIRM_READINGS + int(CONFIRM_WALL_S) + 1):  # a new sequence from 0, for newer seconds
        outcomes.append(history.put(reading(seq, T0 + nxt + seq)))
        wall.now += 1.0
    assert outcomes[0] == SEQ_REUSED
    assert STORED in outcomes
    taken = outcomes.index(STORED)
    assert all(outcome == STORED for outcome in outcomes[taken:])
    summary = history.summary("A")
    assert summary.seq_restarts == 1
    assert history.gaps("A") == [(0, taken - 1)]  # asked for again by gap repair


def test_a_forged_reading_between_real_ones_never_becomes_a_restart(history: History, wall: Wall) -> None:
    nxt = live(history, wall, 10)
    for _ in range(10 * CONFIRM_READINGS):
        assert history.put(reading(0, T0 + nxt + 1000)) in (SEQ_REUSED, FUTURE)
        nxt = live(history, wall, 1, nxt)
    assert history.summary("A").seq_restarts == 0


def test_a_meter_restarted_at_a_later_time_is_followed_after_confirmation(history: History, wall: Wall) -> None:
    nxt = live(history, wall, 10)
    later = T0 + nxt + 6 * 3600  # FLEET_START moved six hours on, seq goes on from the outbox
    outcomes = []
    for i in range(CONFIRM_READINGS + int(CONFIRM_WALL_S) + 1):
        outcomes.append(history.put(reading(nxt + i, later + i)))
        wall.now += 1.0
    assert outcomes[0] == FUTURE
    assert outcomes[-1] == STORED
    assert history.watermark("A") == later + len(outcomes)


def test_after_a_restart_of_the_bridge_the_meter_clock_goes_on_from_the_store(tmp_path: Path, wall: Wall) -> None:
    store = ReadingStore(tmp_path, retention_s=86_400)
    first = History(3600, store, clock=wall)
    nxt = live(first, wall, 30)
    assert store.flush()
    store.close()
    again_store = ReadingStore(tmp_path, retention_s=86_400)
    again = History(3600, again_store, clock=wall)
    again.load()
    try:
        assert again.put(reading(nxt, T0 + nxt + YEAR)) == FUTURE  # a forged first reading after the restart
        assert again.put(reading(nxt, T0 + nxt)) == STORED
        assert again.summary("A").last_seq == nxt
    finally:
        again_store.close()
