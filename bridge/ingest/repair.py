"""Gap repair: ask meters to publish again the readings the bridge never received, with bounded work and traffic.

A gap (seqs missing below a meter's highest) that is still open ``REPAIR_AFTER_S`` after the repairer first tracks it
gets a replay request on ``meters/<id>/cmd/replay`` (``config.wire.encode_replay``); the meter answers from its outbox
with ordinary readings, which fill the gap (``bridge.ingest.sequence.SeqTracker`` counts them as repaired). A request
covers the lowest ``CHUNK_SEQS`` seqs of a range; when they have come, the next chunk is asked. A request unanswered
after ``RETRY_S`` is repeated, at most ``ATTEMPTS`` times per chunk: seqs the meter no longer holds (it was killed
between writing and sending, or pruned them) stay missing and are counted as given up, once, and never asked again (a
range given up entirely is forgotten as a span of seqs, not per range, until the meter restarts its sequence).

Bounded whatever a meter sends (a seq jump of 2**62 opens a gap of 2**62 seqs; History keeps up to 10,000 ranges per
meter). Nothing is proportional to a gap's length, and per pass (every ``POLL_S``):

- per meter, only its lowest ``RANGES_PER_METER`` open ranges (outside the span given up) are looked at and have state;
  at most ``TRACKED_RANGES`` range states fleet-wide. State of a range that disappeared is dropped.
- at most ``INFLIGHT_PER_METER`` requests outstanding per meter (sent less than ``RETRY_S`` ago, not yet answered),
  one per range; at most ``REQUESTS_PER_PASS`` requests per pass, fleet-wide.
- replay bytes: each request's answer is estimated at ``BYTES_PER_SEQ`` bytes a seq (readings are 190-260 bytes on the
  wire) and taken from a token bucket of ``REPLAY_BYTES_PER_S`` bytes per second (holding at most one second's worth),
  so the estimates sent in any interval of T seconds stay under ``REPLAY_BYTES_PER_S * (T + 1)``.
- at most ``LOG_LINES_PER_PASS`` log lines (one per request or give-up), then one summary line.

What does not fit waits for a later pass: each meter's oldest ranges first; the pass starts where the last one ran out
of budget (or at the next meter), so one meter with a huge gap cannot starve the others.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from bridge.ingest.history import History
from bridge.ingest.ticker import Ticker
from config.topics import READING_QOS, replay_topic
from config.wire import MAX_REPLAY, encode_replay

log = logging.getLogger(__name__)

REPAIR_AFTER_S: Final = 1.0  # wall seconds: QoS 1 redeliveries and in-flight readings get this long first
RETRY_S: Final = 5.0
ATTEMPTS: Final = 5  # requests per chunk before its seqs are given up
POLL_S: Final = 0.5
RANGES_PER_METER: Final = 4  # lowest open ranges of a meter looked at (and tracked) per pass
TRACKED_RANGES: Final = 10_000  # range states fleet-wide
INFLIGHT_PER_METER: Final = 2
REQUESTS_PER_PASS: Final = 200
BYTES_PER_SEQ: Final = 260  # estimate of one replayed reading on the wire
REPLAY_BYTES_PER_S: Final = 2_000_000  # fleet-wide replay budget (estimated answer bytes per second)
CHUNK_SEQS: Final = min(MAX_REPLAY, REPLAY_BYTES_PER_S // BYTES_PER_SEQ)  # seqs per request: fits the bucket
LOG_LINES_PER_PASS: Final = 20

Publish = Callable[[str, bytes, int, bool], bool]


class ByteBudget:
    """Token bucket: ``rate_bytes_per_s`` accrue per second, at most ``capacity_bytes`` held; starts full."""

    def __init__(self, rate_bytes_per_s: float, capacity_bytes: float, now_s: float) -> None:
        if rate_bytes_per_s <= 0 or capacity_bytes <= 0:
            raise ValueError("rate_bytes_per_s and capacity_bytes must be > 0")
        self.rate_bytes_per_s = rate_bytes_per_s
        self.capacity_bytes = capacity_bytes
        self.tokens = capacity_bytes
        self.at_s = now_s

    def take(self, cost_bytes: float, now_s: float) -> bool:
        """Spend ``cost_bytes`` if the bucket holds them at ``now_s``; False (nothing spent) otherwise."""
        if now_s > self.at_s:
            self.tokens = min(self.capacity_bytes, self.tokens + (now_s - self.at_s) * self.rate_bytes_per_s)
            self.at_s = now_s
        if cost_bytes > self.tokens:
            return False
        self.tokens -= cost_bytes
        return True


@dataclass(slots=True)
class RangeState:
    """The repairer's memory of one open range of a meter, keyed by the range's last seq (which stays put while the
    range fills from below)."""

    first: int  # the range's first seq when last looked at
    due_s: float  # not asked before this
    next_seq: int  # lowest seq not given up: chunks below it were asked ATTEMPTS times in vain
    attempts: int = 0  # requests for the chunk at next_seq
    asked: tuple[int, int, float] | None = None  # the outstanding request: (from_seq, to_seq, sent at)
    given_up: bool = False  # every seq of the range was given up; waiting to join the meter's span


@dataclass(slots=True)
class MeterState:
    """The repairer's memory of one meter: its tracked ranges and the span of seqs whose ranges were all given up."""

    ranges: dict[int, RangeState] = field(default_factory=dict)
    span: tuple[int, int] | None = None  # lo..hi: every range inside was given up
    restarts: int = 0  # the meter's seq restarts when the span was started: a new sequence voids it


class GapRepairer:
    """Watches every meter's gaps and asks for replays; ``step`` is one pass (the unit-test seam)."""

    def __init__(
        self,
        history: History,
        publish: Publish,
        clock: Callable[[], float] = time.monotonic,
        owns: Callable[[str], bool] = lambda meter: True,
    ) -> None:
        self.history = history
        self.publish = publish
        self.clock = clock
        self.owns = owns  # a shard (FLEET_SHARD) asks only its own meters for replays
        self.requested = 0
        self.given_up = 0
        self.seqs_requested: Counter[str] = Counter()  # per meter: seqs asked for (each attempt counts)
        self.budget = ByteBudget(REPLAY_BYTES_PER_S, REPLAY_BYTES_PER_S, clock())
        self._meters: dict[str, MeterState] = {}
        self._tracked = 0  # range states over all meters
        self._start = ""  # the meter the next pass starts at (round robin)
        self._lines = 0  # log lines this pass
        self._unlogged = 0
        self._ticker = Ticker("gap-repair", POLL_S, self.step)

    def tracked(self) -> int:
        """Range states held, over all meters (at most ``TRACKED_RANGES``)."""
        return self._tracked

    def meter_state(self, meter: str) -> MeterState | None:
        """What the repairer remembers of ``meter`` (None: nothing)."""
        return self._meters.get(meter)

    def step(self) -> int:
        """Request replays for the gaps that are due, within the caps; returns how many requests went out."""
        now = self.clock()
        meters = [meter for meter in self.history.meters() if self.owns(meter)]
        present = set(meters)
        for meter in [meter for meter in self._meters if meter not in present]:
            self._forget(meter)
        if not meters:
            return 0
        first = bisect.bisect_left(meters, self._start) % len(meters)
        self._lines = self._unlogged = 0
        sent = 0
        blocked = None
        for i in range(len(meters)):  # bounded: each meter once
            meter = meters[(first + i) % len(meters)]
            sent_here, stopped = self._meter_pass(meter, now, REQUESTS_PER_PASS - sent)
            sent += sent_here
            if stopped:
                blocked = meter
                break
        if blocked is not None:
            self._start = blocked  # it comes first next time
        else:
            self._start = meters[(first + 1) % len(meters)]
        if self._unlogged:
            log.info("... and %d more replay requests or give-ups this pass (not logged one by one)", self._unlogged)
        self.requested += sent
        return sent

    def _meter_pass(self, meter: str, now: float, allowed: int) -> tuple[int, bool]:
        """Update one meter's state and ask what is due; (requests sent, whether a fleet-wide cap stopped it)."""
        gaps = self.history.gaps(meter)
        if not gaps:
            self._forget(meter)
            return 0, False
        state = self._meters.get(meter)
        if state is None:
            state = self._meters[meter] = MeterState()
        if state.span is not None and self.history.summary(meter).seq_restarts != state.restarts:
            state.span = None  # a new sequence: the seqs given up belong to the old one
        lo_index, hi_index = _span_indexes(gaps, state.span)
        if lo_index == hi_index:
            state.span = None  # nothing of it left (repaired, or dropped by History)
        candidates = [gaps[k] for k in range(min(lo_index, RANGES_PER_METER))]
        candidates += [gaps[k] for k in range(hi_index, min(len(gaps), hi_index + RANGES_PER_METER - len(candidates)))]
        wanted = {range_last for _, range_last in candidates}
        for range_last in [last for last in state.ranges if last not in wanted]:
            del state.ranges[range_last]  # gone (repaired, split, dropped by History) or out of the window
            self._tracked -= 1
        for range_first, range_last in candidates:
            if range_last not in state.ranges and self._tracked < TRACKED_RANGES:  # else it waits for a later pass
                state.ranges[range_last] = RangeState(range_first, now + REPAIR_AFTER_S, range_first)
                self._tracked += 1
        sent = 0
        stopped = False
        inflight = 0
        for range_first, range_last in candidates:
            known = state.ranges.get(range_last)
            if known is None:
                continue
            _observe(known, range_first, now)
            if known.asked is not None:
                inflight += 1
        for _, range_last in candidates:
            known = state.ranges.get(range_last)
            if known is None or known.given_up or known.asked is not None or now < known.due_s:
                continue
            if known.attempts >= ATTEMPTS:
                self._give_up(meter, known, range_last)
                if known.given_up:
                    continue
            if inflight >= INFLIGHT_PER_METER:
                continue
            if sent >= allowed:
                stopped = True
                break
            from_seq, to_seq = known.next_seq, min(range_last, known.next_seq + CHUNK_SEQS - 1)
            count = to_seq - from_seq + 1
            if not self.budget.take(count * BYTES_PER_SEQ, now):
                stopped = True  # the rest waits; this meter comes first next pass
                break
            if not self.publish(replay_topic(meter), encode_replay(from_seq, to_seq), READING_QOS, False):
                self._say(logging.WARNING, "could not publish a replay request to meter %s", meter)
                stopped = True
                break
            known.attempts += 1
            known.asked = (from_seq, to_seq, now)
            inflight += 1
            sent += 1
            self.seqs_requested[meter] += count
            self._say(
                logging.INFO,
                "asked meter %s to replay seq %d..%d (attempt %d)",
                meter,
                from_seq,
                to_seq,
                known.attempts,
            )
        self._fold(state, gaps, meter)
        return sent, stopped

    def _give_up(self, meter: str, known: RangeState, range_last: int) -> None:
        """The chunk at ``next_seq`` was asked ``ATTEMPTS`` times in vain: count it once and move past it."""
        to_seq = min(range_last, known.next_seq + CHUNK_SEQS - 1)
        self.given_up += to_seq - known.next_seq + 1
        self._say(
            logging.INFO, "gave up on meter %s seq %d..%d after %d requests", meter, known.next_seq, to_seq, ATTEMPTS
        )
        known.next_seq, known.attempts = to_seq + 1, 0
        known.given_up = known.next_seq > range_last

    def _fold(self, state: MeterState, gaps: list[tuple[int, int]], meter: str) -> None:
        """Move ranges given up entirely into the meter's span while they are next to it in ``gaps``."""
        for _ in range(2 * RANGES_PER_METER):  # bounded: each pass of the loop folds one range or ends it
            lo_index, hi_index = _span_indexes(gaps, state.span)
            if state.span is None:
                given = [last for last, known in state.ranges.items() if known.given_up]
                if not given:
                    return
                index = bisect.bisect_left(gaps, (min(given) + 1,)) - 1  # the range that ends there
            elif hi_index < len(gaps) and self._given_up(state, gaps[hi_index]):
                index = hi_index
            elif lo_index > 0 and self._given_up(state, gaps[lo_index - 1]):
                index = lo_index - 1
            else:
                return
            range_first, range_last = gaps[index]
            del state.ranges[range_last]
            self._tracked -= 1
            if state.span is None:
                state.span = (range_first, range_last)
                state.restarts = self.history.summary(meter).seq_restarts
            else:
                state.span = (min(state.span[0], range_first), max(state.span[1], range_last))

    @staticmethod
    def _given_up(state: MeterState, gap: tuple[int, int]) -> bool:
        known = state.ranges.get(gap[1])
        return known is not None and known.given_up

    def _forget(self, meter: str) -> None:
        state = self._meters.pop(meter, None)
        if state is not None:
            self._tracked -= len(state.ranges)

    def _say(self, level: int, message: str, *args: object) -> None:
        """Log one line, unless this pass has had ``LOG_LINES_PER_PASS`` already (then it is only counted)."""
        if self._lines < LOG_LINES_PER_PASS:
            self._lines += 1
            log.log(level, message, *args)
        else:
            self._unlogged += 1

    def start(self) -> None:
        """Run passes every ``POLL_S`` in a daemon thread."""
        self._ticker.start()

    def stop(self) -> None:
        """Stop the thread."""
        self._ticker.stop()


def _observe(known: RangeState, range_first: int, now: float) -> None:
    """Bring a range's state up to what History says now: readings that came, a request answered or expired."""
    if range_first > known.next_seq:  # its lowest seqs came: the chunk asked (if any) is answered, or being answered
        known.next_seq, known.attempts = range_first, 0
    known.first = range_first
    if known.asked is not None:
        _from_seq, to_seq, sent_s = known.asked
        if to_seq < range_first or now >= sent_s + RETRY_S:
            known.asked = None  # answered in full, or unanswered for RETRY_S: ask again (or give up)


def _span_indexes(gaps: list[tuple[int, int]], span: tuple[int, int] | None) -> tuple[int, int]:
    """Indexes in ``gaps`` of the first range inside ``span`` and of the first above it (both 0 without a span)."""
    if span is None:
        return 0, 0
    return bisect.bisect_left(gaps, (span[0],)), bisect.bisect_left(gaps, (span[1] + 1,))
