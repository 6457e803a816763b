"""bridge.ingest.repair and the replay request of the wire contract."""

from __future__ import annotations

import json
import logging

import pytest

from bridge.ingest.history import History
from bridge.ingest.repair import (
    ATTEMPTS,
    BYTES_PER_SEQ,
    CHUNK_SEQS,
    INFLIGHT_PER_METER,
    LOG_LINES_PER_PASS,
    RANGES_PER_METER,
    REPAIR_AFTER_S,
    REPLAY_BYTES_PER_S,
    REQUESTS_PER_PASS,
    RETRY_S,
    TRACKED_RANGES,
    ByteBudget,
    GapRepairer,
)
from bridge.ingest.sequence import CONFIRM_READINGS, CONFIRM_WALL_S
from config.errors import PayloadError
from config.wire import MAX_REPLAY, Reading, decode_replay, encode_replay

T0 = 1_704_067_200


def _add(history: History, seq: int, meter: str = "A", ts: int | None = None) -> None:
    history.add(Reading(meter, seq, T0 + seq if ts is None else ts, 0.0, 0.0, 500.0, 0.0, 0.0, 0.0))


class HugeGap:
    """``history``, except that meter A's gaps are ``(2, jump)``: what History held before it refused seq jumps."""

    def __init__(self, history: History, jump: int) -> None:
        self.history = history
        self.jump = jump

    def meters(self) -> list[str]:
        return self.history.meters()

    def gaps(self, meter: str) -> list[tuple[int, int]]:
        return [(2, self.jump)] if meter == "A" else self.history.gaps(meter)

    def summary(self, meter: str) -> object:
        return self.history.summary(meter)


class Recorder:
    """A ``publish`` that records the replay requests: (meter, from_seq, to_seq)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, int, int]] = []

    def __call__(self, topic: str, payload: bytes, qos: int, retain: bool) -> bool:
        request = json.loads(payload)
        self.sent.append((topic.split("/")[1], request["from_seq"], request["to_seq"]))
        return True

    def take(self) -> list[tuple[str, int, int]]:
        """The requests recorded since the last call."""
        sent, self.sent = self.sent, []
        return sent


def test_asks_after_a_while_retries_and_gives_up() -> None:
    history = History(3600)
    for seq in (0, 1, 5):
        _add(history, seq)
    sent: list[tuple[str, dict[str, int]]] = []
    now = [100.0]
    repairer = GapRepairer(history, lambda t, p, q, r: sent.append((t, json.loads(p))) is None, lambda: now[0])
    assert repairer.step() == 0  # just seen: in-flight readings get their chance first
    now[0] += REPAIR_AFTER_S
    assert repairer.step() == 1
    assert sent == [("meters/A/cmd/replay", {"from_seq": 2, "to_seq": 4})]
    assert repairer.step() == 0  # not again before RETRY_S
    for _ in range(ATTEMPTS):
        now[0] += RETRY_S
        repairer.step()
    assert len(sent) == ATTEMPTS
    assert repairer.given_up == 3


def test_a_repaired_gap_is_forgotten() -> None:
    history = History(3600)
    for seq in (0, 3):
        _add(history, seq)
    now = [0.0]
    repairer = GapRepairer(history, lambda t, p, q, r: True, lambda: now[0])
    assert repairer.step() == 0
    now[0] += REPAIR_AFTER_S
    assert repairer.step() == 1
    _add(history, 1)
    _add(history, 2)
    assert repairer.step() == 0
    assert repairer.tracked() == 0
    assert repairer.meter_state("A") is None
    assert history.summary("A").gaps_repaired == 2


def test_replay_request_round_trip_and_bounds() -> None:
    assert decode_replay(encode_replay(3, 9)) == (3, 9)
    for bad in (
        b'{"from_seq": 5, "to_seq": 4}',
        b'{"from_seq": -1, "to_seq": 4}',
        b'{"from_seq": 1}',
        b'{"from_seq": true, "to_seq": 4}',
        json.dumps({"from_seq": 0, "to_seq": MAX_REPLAY}).encode(),
        b"[1, 2]",
        b"nope",
    ):
        with pytest.raises(PayloadError):
            decode_replay(bad)


@pytest.mark.timeout(10)  # today's repairer walked the whole gap: 2**62 seqs never ended (a hung worker)
@pytest.mark.parametrize("jump", [10**9, 2**62])
def test_a_huge_gap_is_asked_one_chunk_at_a_time(jump: int) -> None:
    history = History(60)
    _add(history, 0, ts=T0)
    _add(history, 1, ts=T0 + 1)
    _add(history, 1 + jump, ts=T0 + 2)  # the attacker's reading: one seq far ahead
    assert history.gaps("A") == []  # History refuses it (seq_jump, bridge.ingest.sequence): no gap at all
    # The repairer is bounded on its own, whatever History reports: a History that holds the whole gap.
    publish, now = Recorder(), [0.0]
    repairer = GapRepairer(HugeGap(history, jump), publish, lambda: now[0])  # type: ignore[arg-type]
    assert repairer.step() == 0
    now[0] += REPAIR_AFTER_S
    assert repairer.step() == 1
    assert publish.take() == [("A", 2, 1 + CHUNK_SEQS)]
    assert repairer.step() == 0  # in flight: not again before RETRY_S
    assert repairer.tracked() == 1
    for _ in range(ATTEMPTS):  # never answered: retried, then given up once, and the next chunk is asked
        now[0] += RETRY_S
        assert repairer.step() == 1
    assert publish.take() == [("A", 2, 1 + CHUNK_SEQS)] * (ATTEMPTS - 1) + [("A", 2 + CHUNK_SEQS, 1 + 2 * CHUNK_SEQS)]
    assert repairer.given_up == CHUNK_SEQS
    assert repairer.seqs_requested["A"] == (ATTEMPTS + 1) * CHUNK_SEQS
    assert repairer.tracked() == 1


def test_a_chunk_answered_brings_the_next_one_at_once() -> None:
    history = History(2 * CHUNK_SEQS, speed=100_000.0)  # a fast simulation: the outage below is a blink
    size = CHUNK_SEQS + 100
    _add(history, 0)
    _add(history, size + 1)  # seqs 1..size missing (a bridge outage)
    publish, now = Recorder(), [0.0]
    repairer = GapRepairer(history, publish, lambda: now[0])
    repairer.step()
    now[0] += REPAIR_AFTER_S
    assert repairer.step() == 1
    assert publish.take() == [("A", 1, CHUNK_SEQS)]  # not every chunk of the gap at once
    for seq in range(1, CHUNK_SEQS + 1):  # the meter answers
        _add(history, seq)
    now[0] += POLL_STEP_S
    assert repairer.step() == 1
    assert publish.take() == [("A", CHUNK_SEQS + 1, size)]


POLL_STEP_S = 0.5


def test_at_most_two_requests_in_flight_per_meter_lowest_ranges_first() -> None:
    history = History(60)
    for seq in range(0, 21, 2):  # ten ranges: 1, 3, ..., 19
        _add(history, seq)
    publish, now = Recorder(), [0.0]
    repairer = GapRepairer(history, publish, lambda: now[0])
    repairer.step()
    now[0] += REPAIR_AFTER_S
    assert repairer.step() == INFLIGHT_PER_METER == 2
    assert publish.take() == [("A", 1, 1), ("A", 3, 3)]
    now[0] += POLL_STEP_S
    assert repairer.step() == 0  # both outstanding
    _add(history, 1)  # the first is answered: the next range takes its place
    assert repairer.step() == 1
    assert publish.take() == [("A", 5, 5)]
    assert repairer.tracked() <= RANGES_PER_METER


@pytest.mark.timeout(120)  # building the History takes a few seconds; today's pass sent 1,000,000 requests
def test_ten_thousand_ranges_for_a_hundred_meters(caplog: pytest.LogCaptureFixture) -> None:
    history = History(60)
    meters = [f"M{i:03d}" for i in range(100)]
    for meter in meters:
        for seq in range(0, 20_001, 2):  # 10,000 ranges of one seq each
            _add(history, seq, meter)
    assert len(history.gaps(meters[0])) == 10_000
    publish, now = Recorder(), [0.0]
    repairer = GapRepairer(history, publish, lambda: now[0])
    assert repairer.step() == 0
    now[0] += REPAIR_AFTER_S
    with caplog.at_level(logging.INFO, logger="bridge.ingest.repair"):
        sent = repairer.step()
    assert sent == REQUESTS_PER_PASS == len(publish.sent)
    per_meter: dict[str, list[tuple[int, int]]] = {}
    for meter, first, last in publish.take():
        per_meter.setdefault(meter, []).append((first, last))
    assert all(asked == [(1, 1), (3, 3)] for asked in per_meter.values())  # each meter's oldest, two at most
    assert len(per_meter) == 100
    assert repairer.tracked() <= min(TRACKED_RANGES, RANGES_PER_METER * len(meters))
    assert len(caplog.records) <= LOG_LINES_PER_PASS + 1
    for _ in range(3 * ATTEMPTS):  # never answered: retries, give-ups, later ranges; bounded all along
        now[0] += RETRY_S
        assert repairer.step() <= REQUESTS_PER_PASS
        assert repairer.tracked() <= min(TRACKED_RANGES, RANGES_PER_METER * len(meters))


def test_a_meter_with_a_small_gap_is_not_starved_by_huge_ones() -> None:
    history = History(60)
    huge = [f"A{i}" for i in range(10)]
    for meter in huge:  # legitimately huge: 1,000,000 s of one reading a second lost; each chunk is the whole bucket
        _add(history, 0, meter)
        _add(history, 1_000_001, meter)
    _add(history, 0, "Z")
    _add(history, 2, "Z")
    publish, now = Recorder(), [0.0]
    repairer = GapRepairer(history, publish, lambda: now[0])
    asked_z = False
    for _ in range(200):  # bounded: 100 s of passes; the huge ones alone want 4 MB/s (their chunks expire every 5 s)
        now[0] += POLL_STEP_S
        repairer.step()
        asked_z = asked_z or ("Z", 1, 1) in publish.sent
        if asked_z and now[0] > 4 * RETRY_S:
            break
    assert asked_z
    assert ("Z", 1, 1) in publish.sent
    estimated = sum((last - first + 1) * BYTES_PER_SEQ for _, first, last in publish.sent)
    assert estimated <= REPLAY_BYTES_PER_S * (now[0] + 1)  # the bucket: rate x time + what it holds


def test_ranges_given_up_are_counted_once_and_not_asked_again() -> None:
    history = History(60)
    for seq in range(0, 21, 2):  # ten ranges of one seq, never answered
        _add(history, seq)
    publish, now = Recorder(), [0.0]
    repairer = GapRepairer(history, publish, lambda: now[0])
    for _ in range(1000):  # bounded
        now[0] += POLL_STEP_S
        repairer.step()
        if repairer.given_up == 10:
            break
    assert repairer.given_up == 10
    assert len(publish.take()) == 10 * ATTEMPTS
    state = repairer.meter_state("A")
    assert state is not None
    assert (state.span, state.ranges) == ((1, 19), {})  # remembered as one span, not per range
    assert repairer.tracked() == 0
    _add(history, 23)  # a new gap above them is asked
    for _ in range(4):
        now[0] += RETRY_S
        repairer.step()
    assert publish.take() == [("A", 21, 22)] * 3  # seen, then asked at each RETRY_S
    assert repairer.given_up == 10


def test_a_new_sequence_voids_what_was_given_up() -> None:
    wall = [0.0]
    history = History(60, clock=lambda: wall[0])
    _add(history, 0)
    _add(history, 5)  # 1..4 missing, never answered
    publish, now = Recorder(), [0.0]
    repairer = GapRepairer(history, publish, lambda: now[0])
    for _ in range(100):  # bounded
        now[0] += RETRY_S
        repairer.step()
        if repairer.given_up:
            break
    state = repairer.meter_state("A")
    assert state is not None
    assert state.span == (1, 4)
    for seq in range(CONFIRM_READINGS):  # the meter lost its state: seq 0, 1, ... again, for newer seconds
        _add(history, seq, ts=T0 + 100 + seq)
        wall[0] += CONFIRM_WALL_S / (CONFIRM_READINGS - 1)
    assert history.summary("A").seq_restarts == 1  # followed once confirmed; what was refused meanwhile is missing
    last = CONFIRM_READINGS - 1
    assert history.gaps("A") == [(0, last - 1)]  # inside the old span, mostly
    publish.take()
    for _ in range(3):
        now[0] += REPAIR_AFTER_S
        repairer.step()
    assert publish.take() == [("A", 0, last - 1)]


def test_byte_budget() -> None:
    budget = ByteBudget(100.0, 200.0, 0.0)
    assert budget.take(150, 0.0)
    assert not budget.take(100, 0.0)  # 50 left
    assert budget.take(100, 0.5)
    assert budget.take(200, 100.0)  # refilled, but never beyond what it holds
    assert not budget.take(1, 100.0)
    for rate, capacity in ((0.0, 1.0), (1.0, 0.0)):
        with pytest.raises(ValueError, match="must be > 0"):
            ByteBudget(rate, capacity, 0.0)


def test_a_failed_publish_spends_no_attempt() -> None:
    history = History(60)
    _add(history, 0)
    _add(history, 2)
    up, now = [False], [0.0]
    sent: list[bytes] = []

    def publish(topic: str, payload: bytes, qos: int, retain: bool) -> bool:
        sent.append(payload)
        return up[0]

    repairer = GapRepairer(history, publish, lambda: now[0])
    for _ in range(ATTEMPTS + 2):
        now[0] += RETRY_S
        repairer.step()
    assert repairer.given_up == 0
    assert repairer.requested == 0
    up[0] = True
    now[0] += POLL_STEP_S
    assert repairer.step() == 1
