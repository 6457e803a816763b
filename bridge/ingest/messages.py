"""Turning MQTT messages into history: decode, validate, deduplicate, count.

``Ingest.handle`` is the seam between MQTT and the bridge: it takes a topic and raw payload bytes, never raises, and
counts every rejected message or reading by reason (``config.wire.REASONS`` plus ``internal`` for bugs): what the
wire rejects, and what history rejects (``too_old``, ``conflict``, ``future``, ``seq_jump``, ``seq_reused``:
``bridge.ingest.history``, ``bridge.ingest.sequence``). Nothing is dropped uncounted. A status other than ``online`` /
``offline`` (a meter may leave junk retained on its status topic) makes the meter's status ``unknown``, and is counted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Final

from bridge.ingest.history import History
from bridge.ingest.ring import DUPLICATE, STORED
from config.errors import PayloadError
from config.topics import TOPIC_ROOT, parse_topic, reading_topic, valid_meter_id
from config.wire import Reading, decode_batch, decode_reading, decode_status, format_ts

log = logging.getLogger(__name__)

INTERNAL: Final = "internal"  # the reject reason for a bug while handling a message (beside config.wire.REASONS)
_LOG_EVERY: Final = 1000  # log the first reject of each reason, then every N-th


class Ingest:
    """Validates messages into ``History``; counts accepted, duplicate and rejected messages."""

    def __init__(self, history: History, clock: Callable[[], float] = time.time) -> None:
        self.history = history
        self._clock = clock  # wall time of arrival, for /metrics' ingest lag (never for aggregation)
        self._lock = threading.Lock()
        self.accepted = 0
        self.duplicates = 0
        self.rejected: Counter[str] = Counter()
        self.rejected_by_meter: dict[str, Counter[str]] = {}  # where the topic names a valid meter id
        self._arrived: dict[str, float] = {}  # meter -> wall time its last valid reading arrived

    def handle(self, topic: str, payload: bytes) -> bool:
        """Process one message (a reading, a batch of readings or a status); True if it brought a new reading or was a
        status. Never raises."""
        try:
            _, kind = parse_topic(topic)
            if kind == "status":
                meter, status = decode_status(topic, payload)
                self.history.set_status(meter, status)
                return True
            if kind == "readings":
                readings, errors = decode_batch(topic, payload)
                for error in errors:  # a bad element costs only itself
                    self._reject(error.reason, topic, str(error))
                return sum(self._store(reading) for reading in readings) > 0
            return self._store(decode_reading(topic, payload))
        except PayloadError as exc:
            junk_of = _meter_of(topic) if exc.reason == "bad_status" else None
            if junk_of is not None:
                self.history.status_unknown(junk_of)  # not what the meter said last: nobody knows now
            self._reject(exc.reason, topic, str(exc))
        except Exception:  # a bug must not kill the MQTT network thread
            log.exception("internal error handling a message on %r", topic[:100])
            self._reject(INTERNAL, topic, "internal error")
        return False

    def _store(self, reading: Reading) -> bool:
        outcome = self.history.put(reading)
        if outcome not in (STORED, DUPLICATE):
            self._reject(outcome, reading_topic(reading.meter), f"seq {reading.seq} at {format_ts(reading.ts)}")
            return False
        with self._lock:
            self._arrived[reading.meter] = self._clock()
            if outcome == STORED:
                self.accepted += 1
            else:
                self.duplicates += 1
        return outcome == STORED

    def _reject(self, reason: str, topic: str, detail: str) -> None:
        meter = _meter_of(topic)
        with self._lock:
            self.rejected[reason] += 1
            count = self.rejected[reason]
            if meter is not None:
                self.rejected_by_meter.setdefault(meter, Counter())[reason] += 1
        if count == 1 or count % _LOG_EVERY == 0:
            log.warning("rejected message #%d for %s on %r: %s", count, reason, topic[:100], detail[:200])

    def rejected_of(self, meter: str) -> dict[str, int]:
        """Rejects by reason of messages on ``meter``'s topics."""
        with self._lock:
            return dict(self.rejected_by_meter.get(meter, {}))

    def arrivals(self) -> dict[str, float]:
        """Wall time (epoch seconds) the last valid reading of each meter arrived, duplicates included."""
        with self._lock:
            return dict(self._arrived)

    def counters(self) -> dict[str, object]:
        """Snapshot of the counters."""
        with self._lock:
            return {"accepted": self.accepted, "duplicates": self.duplicates, "rejected": dict(self.rejected)}


def _meter_of(topic: str) -> str | None:
    """The meter id a topic names, if it is ``meters/<valid id>/...``."""
    parts = topic.split("/")
    return parts[1] if len(parts) >= 3 and parts[0] == TOPIC_ROOT and valid_meter_id(parts[1]) else None
