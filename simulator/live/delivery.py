"""What of one meter's stream the broker has acknowledged, what is in flight, and what waits to be (re)sent (pure).

A meter hands readings to MQTT as messages (one reading, or a batch of consecutive seqs); each QoS 1 message is
acknowledged by the broker (PUBACK, by message id). ``acked_upto`` is the seq up to which every reading was
acknowledged: it is kept in the outbox, so a restarted meter re-sends the rest. Readings recorded while the meter was
not connected are *held* (never handed to the connection, whose queue dies with the process) and sent from the outbox as
batches, oldest first, after the connection is back (``next_chunk``), a few messages in flight at a time so that
live readings are never starved.
"""

from __future__ import annotations

from collections import deque
from typing import Final

BACKLOG_IN_FLIGHT: Final = 8  # backlog messages of one meter awaiting PUBACK before the next is sent


class Delivery:
    """One meter's delivery state; seqs are consecutive integers, message ids are MQTT packet identifiers (``mid``)."""

    def __init__(self, acked_upto: int | None = None, last_seq: int | None = None) -> None:
        self.pending: dict[int, tuple[int, int]] = {}  # mid -> (first, last) seq, published, not acknowledged
        self.backlog: deque[list[int]] = deque()  # [first, last] seq ranges to send from the outbox, ascending
        self.handed = acked_upto  # highest seq published (or acknowledged before this process)
        if last_seq is not None and (acked_upto is None or acked_upto < last_seq):
            self.backlog.append([0 if acked_upto is None else acked_upto + 1, last_seq])
            self.handed = last_seq
        self._saved = acked_upto

    def sent(self, mid: int, first: int, last: int) -> None:
        """Readings ``first..last`` were published as message ``mid``."""
        self.pending[mid] = (first, last)
        self.handed = last if self.handed is None else max(self.handed, last)

    def held(self, first: int, last: int) -> None:
        """Readings ``first..last`` are on record but not published (no connection, or the connection refused them)."""
        if self.backlog and self.backlog[-1][1] + 1 == first:
            self.backlog[-1][1] = last
        elif self.backlog and first < self.backlog[0][0]:
            self.backlog.appendleft([first, last])
        else:
            self.backlog.append([first, last])
        self.handed = last if self.handed is None else max(self.handed, last)

    def acked(self, mid: int) -> None:
        """The broker acknowledged message ``mid`` (unknown ids, e.g. replays, are ignored)."""
        self.pending.pop(mid, None)

    def next_chunk(self, limit: int) -> tuple[int, int] | None:
        """The next backlog range to send (at most ``limit`` seqs), taken off the backlog; None if nothing is due or
        ``BACKLOG_IN_FLIGHT`` messages already await their acknowledgement."""
        if not self.backlog or len(self.pending) >= BACKLOG_IN_FLIGHT or limit < 1:
            return None
        head = self.backlog[0]
        first, last = head[0], min(head[1], head[0] + limit - 1)
        if last == head[1]:
            self.backlog.popleft()
        else:
            head[0] = last + 1
        return first, last

    def acked_upto(self) -> int | None:
        """Every seq up to this one is acknowledged (None: nothing handed yet; -1: not even seq 0)."""
        lows = [first for first, _ in self.pending.values()]
        lows.extend(first for first, _ in self.backlog)
        return min(lows) - 1 if lows else self.handed

    def unsaved(self) -> int | None:
        """``acked_upto()`` if it moved since the last call (to be written to the outbox), else None."""
        now = self.acked_upto()
        if now is None or now == self._saved:
            return None
        self._saved = now
        return now

    @property
    def waiting(self) -> int:
        """Seqs held for sending."""
        return sum(last - first + 1 for first, last in self.backlog)


HELD_IN_MEMORY: Final = 300_000  # payloads of held readings kept in memory, all meters together (about 60 MB)


class HeldPayloads:
    """Payloads of held readings kept in memory, bounded for all meters together: a backlog sent soon after (the
    start's connect phase, a short outage) is taken from here instead of being reproduced from the outbox. The same
    bytes either way; past ``limit`` nothing more is kept, and the rest is reproduced."""

    def __init__(self, limit: int = HELD_IN_MEMORY) -> None:
        self.limit = limit
        self.count = 0
        self._runs: dict[str, deque[tuple[int, list[bytes]]]] = {}  # per meter: (first seq, consecutive payloads)

    def keep(self, meter: str, first: int, payloads: list[bytes]) -> None:
        """Held readings ``first..`` of ``meter`` (if there is room)."""
        if self.count + len(payloads) > self.limit:
            return
        runs = self._runs.setdefault(meter, deque())
        if runs and runs[-1][0] + len(runs[-1][1]) == first:
            runs[-1][1].extend(payloads)
        else:
            runs.append((first, list(payloads)))
        self.count += len(payloads)

    def take(self, meter: str, first: int, last: int) -> list[bytes] | None:
        """The payloads of seqs ``first..last`` if all of them are kept (they are then forgotten, with anything older);
        else None."""
        runs = self._runs.get(meter)
        if not runs:
            return None
        while runs and runs[0][0] + len(runs[0][1]) <= first:  # older than what is sent now: no longer needed
            self.count -= len(runs.popleft()[1])
        if not runs or runs[0][0] > first or runs[0][0] + len(runs[0][1]) <= last:
            if not runs:
                del self._runs[meter]
            return None
        start, payloads = runs.popleft()
        taken = payloads[first - start : last - start + 1]
        rest = payloads[last - start + 1 :]
        self.count -= len(payloads) - len(rest)
        if rest:
            runs.appendleft((last + 1, rest))
        elif not runs:
            del self._runs[meter]
        return taken
