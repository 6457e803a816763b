"""Gap repair: ask meters to publish again the readings the bridge never received.

A gap (seqs missing below a meter's highest) that is still open ``REPAIR_AFTER_S`` after the bridge first saw it gets
a replay request on ``meters/<id>/cmd/replay`` (``config.wire.encode_replay``; at most ``MAX_REPLAY`` seqs each); the
meter answers from its outbox with ordinary readings, which fill the gap (``bridge.history.SeqTracker`` counts them as
repaired). Unanswered requests are repeated every ``RETRY_S``, at most ``ATTEMPTS`` times: readings the meter no longer
holds (it was killed between writing and sending, or pruned them) stay missing and are counted as given up.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Final

from bridge.history import History
from bridge.ticker import Ticker
from config.wire import MAX_REPLAY, READING_QOS, encode_replay, replay_topic

log = logging.getLogger(__name__)

REPAIR_AFTER_S: Final = 1.0  # wall seconds: QoS 1 redeliveries and in-flight readings get this long first
RETRY_S: Final = 5.0
ATTEMPTS: Final = 5
POLL_S: Final = 0.5

Publish = Callable[[str, bytes, int, bool], bool]


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
        self._seen: dict[tuple[str, int, int], tuple[float, int]] = {}  # gap -> (when due next, attempts so far)
        self._ticker = Ticker("gap-repair", POLL_S, self.step)

    def step(self) -> int:
        """Request replays for the gaps that are due; returns how many requests went out."""
        now = self.clock()
        sent = 0
        current: set[tuple[str, int, int]] = set()
        for meter in filter(self.owns, self.history.meters()):
            for first, last in self.history.gaps(meter):
                for start in range(first, last + 1, MAX_REPLAY):
                    key = (meter, start, min(last, start + MAX_REPLAY - 1))
                    current.add(key)
                    due, attempts = self._seen.setdefault(key, (now + REPAIR_AFTER_S, 0))
                    if now < due or attempts >= ATTEMPTS:
                        continue
                    if self.publish(replay_topic(meter), encode_replay(key[1], key[2]), READING_QOS, False):
                        sent += 1
                        self.seqs_requested[meter] += key[2] - key[1] + 1
                        log.info(
                            "asked meter %s to replay seq %d..%d (attempt %d)", meter, key[1], key[2], attempts + 1
                        )
                    self._seen[key] = (now + RETRY_S, attempts + 1)
                    if attempts + 1 >= ATTEMPTS:
                        self.given_up += key[2] - key[1] + 1
        for key in list(self._seen):
            if key not in current:  # repaired (or split by a partial repair: the pieces are new keys)
                del self._seen[key]
        self.requested += sent
        return sent

    def start(self) -> None:
        """Run passes every ``POLL_S`` in a daemon thread."""
        self._ticker.start()

    def stop(self) -> None:
        """Stop the thread."""
        self._ticker.stop()
