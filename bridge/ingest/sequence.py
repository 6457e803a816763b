"""A meter's sequence and clock as the bridge received them, and which readings are plausible (pure: the wall time is
an argument, never read here).

What a genuine meter does (``simulator``): ``seq`` grows by exactly 1 per reading and ``ts`` (simulated seconds) never
goes back; a dropout passes a second without a reading, so between two readings ``ts`` advances at least as much as
``seq``. Its simulated time runs at ``speed`` simulated seconds per wall second. A meter that lost its state starts a
new sequence; a meter restarted with another start time may jump ahead in time. Anything else is not a meter running
for real, and one message must never make the bridge believe it:

- ``future``: ``ts`` more than ``skew_s(speed)`` ahead of ``MeterClock``'s estimate of the meter's simulated time (its
  newest reading's ``ts`` plus the wall time elapsed since it arrived, times ``speed``). One reading can move a meter's
  watermark at most that far ahead of where the meter can plausibly be.
- ``seq_jump``: a ``seq`` above the highest by more than ``ts`` advanced since that reading (plus ``SEQ_SLACK``), or by
  more than ``MAX_SEQ_GAP``: not a gap that replays could fill (a genuine gap is a run of seconds the meter lived
  through), so no gap is opened and nothing is asked for.
- ``seq_reused``: a ``seq`` between the lowest and the highest that is not missing, or whose second does not fit
  between theirs (a missing seq for a newer second, say): the meter already used it, or it belongs to another time.

Each is rejected and counted. A rejected *newer* reading also starts (or continues) a ``Candidate``: another timeline
that the meter may really have moved to (a restart from seq 0, a restart at a later start time, a disconnection
longer than ``MAX_SEQ_GAP``). The candidate is taken, and counted as a restart, only once it has gone on consistently
(consecutive seqs, time going forward) for ``CONFIRM_READINGS`` readings and ``CONFIRM_WALL_S`` wall seconds while not
one reading continued the current timeline; its readings rejected meanwhile become a gap that replays fill. A genuine
meter never interleaves two timelines, so a forged reading between genuine ones never gets that far.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from dataclasses import dataclass
from typing import Final

MAX_GAPS: Final = 10_000  # open gap ranges kept per meter; past it the oldest is given up (counted as lost)
MAX_SEQ_GAP: Final = 7 * 86_400  # a meter's outbox keeps at most 7 days: a longer gap could never be replayed
SEQ_SLACK: Final = 10  # seqs a reading may run ahead of its ts (a genuine meter: never)
FUTURE_SKEW_S: Final = 300  # simulated seconds a reading may be ahead of the meter's estimated time...
FUTURE_SKEW_WALL_S: Final = 30.0  # ...or this many wall seconds of it, if more (fast simulations)
CONFIRM_READINGS: Final = 5  # a candidate timeline is taken after this many consistent readings...
CONFIRM_WALL_S: Final = 10.0  # ...spread over at least this many wall seconds, the current timeline silent meanwhile

FUTURE: Final = "future"
SEQ_JUMP: Final = "seq_jump"
SEQ_REUSED: Final = "seq_reused"


def skew_s(speed: float) -> float:
    """How far (simulated s) a reading may be ahead of its meter's estimated time at ``speed``."""
    return max(float(FUTURE_SKEW_S), FUTURE_SKEW_WALL_S * speed)


class MeterClock:
    """The bridge's estimate of a meter's simulated time: its newest reading plus the wall time since, times speed."""

    def __init__(self, speed: float) -> None:
        if not speed > 0:
            raise ValueError("speed must be > 0")
        self.speed = speed
        self.skew_s = skew_s(speed)
        self.base_ts: float | None = None  # the newest reading's second...
        self.base_wall = 0.0  # ...and when it arrived (wall seconds)

    def estimate(self, wall: float) -> float | None:
        """The meter's simulated time now (None before its first reading)."""
        if self.base_ts is None:
            return None
        return self.base_ts + max(0.0, wall - self.base_wall) * self.speed

    def behind_s(self, last_ts: int, wall: float) -> float:
        """Wall seconds from the end of second ``last_ts`` (the newest held) to the meter's estimated time at ``wall``:
        how long ago, by the meter's own clock, the bridge's newest reading of it was complete (0 before any)."""
        estimate = self.estimate(wall)
        if estimate is None:
            return 0.0
        return max(0.0, estimate - (last_ts + 1)) / self.speed

    def plausible(self, ts: int, wall: float) -> bool:
        """Whether ``ts`` is at most the skew ahead of the estimate (any ``ts`` before the first reading)."""
        estimate = self.estimate(wall)
        return estimate is None or ts <= estimate + self.skew_s

    def anchor(self, ts: int, wall: float) -> None:
        """A newest reading for second ``ts`` arrived at ``wall``. The estimate never goes back: a reading that waited
        in a broker (a QoS 1 redelivery after the ack wait, a persistent session's queue) arrives later than it was
        made, and anchoring at its second would put the meter's live readings, right after it, in the "future"."""
        estimate = self.estimate(wall)
        self.base_ts = float(ts) if estimate is None else max(float(ts), estimate)
        self.base_wall = wall


@dataclass(slots=True)
class Candidate:
    """Another timeline a meter's rejected newer readings are on: from ``first_seq``, now at ``seq`` / ``ts``."""

    first_seq: int
    first_ts: int
    seq: int
    ts: int
    since_wall: float
    readings: int = 1

    def continued_by(self, seq: int, ts: int) -> bool:
        """Whether ``seq`` / ``ts`` is this timeline's next reading (time goes forward at least as seq does)."""
        return seq == self.seq + 1 and ts - self.ts >= 1

    def confirmed(self, wall: float) -> bool:
        """Consistent for long enough to be believed."""
        return self.readings >= CONFIRM_READINGS and wall - self.since_wall >= CONFIRM_WALL_S


class SeqTracker:
    """A meter's sequence as received: the highest seq (and its second), the ranges missing below it, repairs,
    restarts, and the candidate timeline of rejected newer readings (see the module docstring).

    A reading whose seq falls in a missing range repairs it; a seq below the lowest seen, for an older second, is a
    backlog arriving after newer readings (a meter's warm-up or outbox): the range between is a gap.
    """

    def __init__(self) -> None:
        self.highest: int | None = None
        self.highest_ts: int | None = None
        self.lowest: int | None = None
        self.lowest_ts: int | None = None
        self.gaps: list[list[int]] = []  # [first, last] missing, ascending
        self.repaired = 0
        self.restarts = 0
        self.given_up = 0
        self.candidate: Candidate | None = None

    def judge(self, seq: int, ts: int, newest: bool) -> str | None:
        """Why a new reading (``seq`` for second ``ts``; ``newest``: later than every second held) is implausible,
        or None if it is plausible. Changes nothing."""
        if self.highest is None or self.lowest is None or self.highest_ts is None or self.lowest_ts is None:
            return None
        if seq > self.highest:
            jump = seq - self.highest
            return SEQ_JUMP if jump > MAX_SEQ_GAP or jump > ts - self.highest_ts + SEQ_SLACK else None
        if seq < self.lowest:
            back = self.lowest - seq
            return SEQ_JUMP if back > MAX_SEQ_GAP or back > self.lowest_ts - ts + SEQ_SLACK else None
        # Between the lowest and the highest: only a missing seq, for a second between theirs (time advanced at least
        # as much as seq on either side), is one the meter can send now (a replay, a late backlog).
        earliest = self.lowest_ts + (seq - self.lowest) - SEQ_SLACK
        between = earliest <= ts <= self.highest_ts - (self.highest - seq) + SEQ_SLACK
        if not newest and between and self._gap_of(seq) is not None:
            return None
        return SEQ_REUSED  # a seq already used, or one that belongs to another second

    def see(self, seq: int, ts: int) -> None:
        """Account a stored reading's ``seq`` (plausible per ``judge``), for second ``ts``."""
        if self.highest is None or self.lowest is None:
            self.highest = self.lowest = seq
            self.highest_ts = self.lowest_ts = ts
            return
        if seq > self.highest:
            if seq > self.highest + 1:
                self._open(self.highest + 1, seq - 1)
            self.highest, self.highest_ts = seq, ts
            self.candidate = None  # the current timeline went on: whatever contradicted it was not the meter
            return
        if seq < self.lowest:  # older readings arriving late: what lies between is missing
            if seq + 1 <= self.lowest - 1:
                self.gaps.insert(0, [seq + 1, self.lowest - 1])
            self.lowest, self.lowest_ts = seq, ts
            return
        self.fill(seq)

    def fill(self, seq: int) -> bool:
        """Mark ``seq`` received if it is missing (a replayed or late reading, or one held already); True if it was."""
        index = self._gap_of(seq)
        if index is None:
            return False
        first, last = self.gaps[index]
        self.repaired += 1
        self.gaps[index : index + 1] = [p for p in ([first, seq - 1], [seq + 1, last]) if p[0] <= p[1]]
        return True

    def contradicted(self, seq: int, ts: int, wall: float) -> bool:
        """A newer reading was rejected: follow its timeline; True once that timeline is confirmed, and then taken
        (the caller stores the reading as the first of the new timeline, ``see`` is not needed)."""
        candidate = self.candidate
        if candidate is not None and candidate.continued_by(seq, ts):
            candidate.seq, candidate.ts = seq, ts
            candidate.readings += 1
        else:
            self.candidate = candidate = Candidate(seq, ts, seq, ts, wall)
        if not candidate.confirmed(wall):
            return False
        self.candidate = None
        self.restarts += 1
        if self.highest is not None and seq <= self.highest:  # a new sequence: the old one's gaps mean nothing now
            self.gaps = []
            self.lowest, self.lowest_ts = candidate.first_seq, candidate.first_ts
        self.highest, self.highest_ts = seq, ts
        if candidate.first_seq < seq:  # the candidate's readings rejected so far: replays bring them
            self._open(candidate.first_seq, seq - 1)
        return True

    def restore(self, last_seq: int, last_ts: int, first_seq: int, first_ts: int) -> None:
        """Go on from the store's newest reading (``last_seq`` at ``last_ts``) after a restart of the bridge."""
        self.highest, self.highest_ts = last_seq, last_ts
        if self.lowest is None:
            self.lowest, self.lowest_ts = first_seq, first_ts

    def _open(self, first: int, last: int) -> None:
        insort(self.gaps, [first, last])
        while len(self.gaps) > MAX_GAPS:
            lost_first, lost_last = self.gaps.pop(0)
            self.given_up += lost_last - lost_first + 1

    def _gap_of(self, seq: int) -> int | None:
        index = bisect_right(self.gaps, seq, key=lambda gap: gap[0]) - 1
        return index if index >= 0 and self.gaps[index][1] >= seq else None

    @property
    def open(self) -> int:
        """Seqs missing below the highest."""
        return sum(last - first + 1 for first, last in self.gaps)
