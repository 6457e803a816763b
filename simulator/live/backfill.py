"""What the fleet's loop (``simulator.live.publisher.FleetLoop``) sends besides live readings: held readings after a
reconnect or a restart (the backlog), and the seqs the bridge asks for again (replays), both reproduced from the
outbox and sent as batches, oldest first, within a budget per pass (live readings go first).

A base class of ``FleetLoop``, not an object of its own: it works on the loop's links and sets directly.
"""

from __future__ import annotations

import logging
from typing import Final

from config.wire import MAX_BATCH
from simulator.live.delivery import HeldPayloads
from simulator.live.link import MeterLink
from simulator.live.reproduce import Reproducer
from simulator.meters.fleet import Meter

log = logging.getLogger(__name__)

REPLAY_PER_PASS: Final = 1000  # replayed readings per pass of the loop, all meters together
BACKLOG_PER_PASS: Final = 2000  # held readings sent per pass, all meters together (after live and replays)


class Backfill:
    """Sends the backlogs and answers the replay requests of ``FleetLoop``'s links (state set by ``FleetLoop``)."""

    meters: dict[str, Meter]
    _touched: dict[str, MeterLink]
    _backlogged: dict[str, MeterLink]
    _replaying: dict[str, MeterLink]
    _held: HeldPayloads

    def _replay_asked(self, link: MeterLink) -> None:
        self._replaying[link.meter_id] = link

    def _send_backlog(self, reproducer: Reproducer) -> None:
        """Send held readings (reproduced from the outbox), oldest first, at most ``BACKLOG_PER_PASS`` a pass."""
        budget = BACKLOG_PER_PASS
        for meter_id, link in list(self._backlogged.items()):
            while budget > 0 and link.connected:
                chunk = link.delivery.next_chunk(min(budget, MAX_BATCH))
                if chunk is None:
                    break
                self._touched[meter_id] = link
                first, last = chunk
                budget -= last - first + 1
                payloads = self._held.take(meter_id, first, last) or reproducer.payloads(meter_id, first, last)
                if len(payloads) != last - first + 1:  # older than the outbox's retention: what is left, untracked
                    log.warning("meter %s: seqs %d..%d partly gone from the outbox", link.meter_id, first, last)
                    if payloads:
                        link.send(payloads, None)
                    continue
                if not link.send(payloads, first):
                    break
            if not link.delivery.backlog:
                del self._backlogged[meter_id]
            if budget <= 0:
                break

    def _answer_replays(self, reproducer: Reproducer) -> None:
        """Publish again what the bridge asked for, at most ``REPLAY_PER_PASS`` seqs a pass (live goes first); never
        a seq the meter has not produced yet."""
        budget = REPLAY_PER_PASS
        for meter_id, link in list(self._replaying.items()):
            produced = self.meters[meter_id].state.seq - 1
            while link.replays and budget > 0:
                first, last = link.replays.popleft()
                last = min(last, produced)
                if last < first:
                    continue
                upto = min(last, first + budget - 1)
                payloads = reproducer.payloads(link.meter_id, first, upto)
                if payloads:
                    link.send(payloads, None)
                    self._touched[meter_id] = link
                budget -= upto - first + 1
                log.info("meter %s: replayed %d readings of seq %d..%d", link.meter_id, len(payloads), first, upto)
                if upto < last:  # the rest in a later pass
                    link.replays.appendleft((upto + 1, last))
            if not link.replays:
                del self._replaying[meter_id]
            if budget <= 0:
                break
