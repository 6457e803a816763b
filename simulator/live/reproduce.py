"""Readings reproduced from the outbox's checkpoints: for replays, backlogs and a restarted meter.

A meter's readings are a pure function of its run's ``Model`` and its state: ``Meter.due`` from a checkpoint's state
gives the same ``Reading`` values (so the same payload bytes) as the live meter did from the same state, whatever the
time of day, injected errors (drawn per local day from the seed), warm-up (only the starting state differs) or clock
speed (only when they are published). ``advance`` is that stepping, pure; ``Reproducer`` reads the checkpoints
(``simulator.live.outbox``) and steps segment by segment: a segment runs from a checkpoint to the next one (a new run,
i.e. a restart, starts a new segment: other settings, or a later second) and never past what its run produced: the run's
horizon, the live meter's state, or a closed checkpoint.

``resume`` gives, for a restarting process, each meter's state once its last run's horizon is reached: every seq the
killed process may have published is then accounted for (the same readings), and the new run continues after them.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from zoneinfo import ZoneInfo

from config.wire import Reading, encode_reading
from simulator.live.checkpoint import Checkpoint
from simulator.live.outbox import Outbox
from simulator.meters.faults import ErrorType, FaultConfig
from simulator.meters.fleet import Injection, Meter, spec_of
from simulator.meters.meter import MeterState
from simulator.profiles.factory import make_profile

log = logging.getLogger(__name__)

STEP_CHUNK: Final = 3600  # seconds stepped per call of Meter.due (a bound on each call's list)
CURSORS: Final = 1024  # meters whose reproduction position is kept between calls (consecutive chunks continue)
MAX_SEGMENTS: Final = 10_000  # checkpoints crossed in one call at most (a bound; a call crosses a few)


@dataclass(frozen=True, slots=True)
class Model:
    """What, besides its state, makes a meter's readings: one run's settings (stored with the run as JSON)."""

    seed: int
    profile: str
    climate: str
    tz: str
    faults: FaultConfig | None = None

    def to_json(self) -> str:
        """The model as the outbox keeps it."""
        faults = None
        if self.faults is not None:
            f = self.faults
            faults = {
                "every_s": f.every_s,
                "probability": f.probability,
                "types": [int(t) for t in f.types],
                "stuck_s": list(f.stuck_s),
            }
        doc = {"seed": self.seed, "profile": self.profile, "climate": self.climate, "tz": self.tz, "faults": faults}
        return json.dumps(doc, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Model:
        """A model from ``to_json``'s text."""
        doc: dict[str, Any] = json.loads(text)
        faults = None
        if doc["faults"] is not None:
            f = doc["faults"]
            faults = FaultConfig(
                every_s=f["every_s"],
                probability=f["probability"],
                types=tuple(ErrorType(t) for t in f["types"]),
                stuck_s=(int(f["stuck_s"][0]), int(f["stuck_s"][1])),
            )
        return cls(int(doc["seed"]), str(doc["profile"]), str(doc["climate"]), str(doc["tz"]), faults)

    def meter(self, meter_id: str, state: MeterState) -> Meter:
        """The meter ``meter_id`` of this model, at ``state``."""
        spec = spec_of(meter_id)
        zone = ZoneInfo(self.tz)
        injection = None if self.faults is None else Injection(self.faults, zone, self.seed)
        return Meter(spec, make_profile(self.profile, spec, zone, self.seed, self.climate), state, injection)


def advance(meter: Meter, end_ts: int, end_seq: int | None = None) -> list[Reading]:
    """Step ``meter`` through its seconds before ``end_ts``, stopping before seq ``end_seq`` if given; its readings.

    Stopped by ``end_seq``, the meter's state is right after its last reading (seconds after it not yet passed)."""
    readings: list[Reading] = []
    for _ in range(max(0, end_ts - meter.state.next_ts) + 1):  # bounded: each round passes a second at least
        state = meter.state
        if state.next_ts >= end_ts or (end_seq is not None and state.seq >= end_seq):
            break
        # A dropout second counts against the limit without a reading: a round may end short of end_seq.
        limit = STEP_CHUNK if end_seq is None else min(STEP_CHUNK, end_seq - state.seq)
        readings += meter.due(float(end_ts), limit)
    return readings


@dataclass(slots=True)
class _Cursor:
    """Where one meter's reproduction stands: a meter stepped from ``since`` (its segment's checkpoint)."""

    meter: Meter
    since: Checkpoint
    until: Checkpoint | None  # the segment's next checkpoint (None: the newest when the segment was entered)


class Reproducer:
    """Payloads of any retained seqs of a meter, from the outbox's checkpoints (``live``: this process's meters, whose
    own run is bounded by their current state)."""

    def __init__(self, outbox: Outbox, live: Mapping[str, Meter] | None = None) -> None:
        self.outbox = outbox
        self.live = live or {}
        self._models: dict[str, Model] = {}
        self._cursors: OrderedDict[str, _Cursor] = OrderedDict()
        self.mismatches = 0  # checkpoints a reproduction did not reach exactly (would be a bug: logged)

    def payloads(self, meter_id: str, first: int, last: int) -> list[bytes]:
        """The payloads of ``meter_id``'s seqs ``first..last`` that can be reproduced (produced and retained), in
        order; the very bytes published (or held for publishing)."""
        return [encode_reading(r) for r in self.readings(meter_id, first, last)]

    def readings(self, meter_id: str, first: int, last: int) -> list[Reading]:
        """The readings of ``meter_id``'s seqs ``first..last`` that can be reproduced, in order."""
        if last < first:
            return []
        cursor = self._cursors.pop(meter_id, None)
        if cursor is None or cursor.meter.state.seq != first:
            cursor = self._seek(meter_id, first, last)
        out: list[Reading] = []
        for _ in range(MAX_SEGMENTS):  # bounded: each round finishes a segment or the request
            if cursor is None:
                break
            until = cursor.until
            end_seq = last + 1 if until is None else min(last + 1, until.seq)
            out += [r for r in advance(cursor.meter, self._end_ts(cursor.since), end_seq) if r.seq >= first]
            if cursor.meter.state.seq > last or until is None:
                break
            cursor = self._enter(cursor, until)
        if cursor is not None:
            self._cursors[meter_id] = cursor
            while len(self._cursors) > CURSORS:
                self._cursors.popitem(last=False)
        return out

    def _seek(self, meter_id: str, first: int, last: int) -> _Cursor | None:
        since = self.outbox.at_or_before(meter_id, first)
        if since is None:  # older than every checkpoint kept: from the oldest one inside the range, if any
            since = self.outbox.after(meter_id, first)
            if since is None or since.seq > last:
                return None
        return _Cursor(self._meter(meter_id, since), since, self.outbox.after(meter_id, since.seq))

    def _enter(self, cursor: _Cursor, until: Checkpoint) -> _Cursor:
        """Cross from one segment into the next at checkpoint ``until``."""
        meter = cursor.meter
        if until.run == cursor.since.run and not cursor.since.closed:
            # Same run: stepping on must reach the checkpoint's very state (the purity this module rests on).
            advance(meter, until.next_ts)  # its seconds up to the checkpoint: dropouts too, never a reading past it
            if meter.state != until.state:
                self.mismatches += 1
                log.error("meter %s: reproduced state %s differs from checkpoint %s", until.meter, meter.state, until)
            meter.state = until.state
        else:
            meter = self._meter(until.meter, until)
        return _Cursor(meter, until, self.outbox.after(until.meter, until.seq))

    def _meter(self, meter_id: str, since: Checkpoint) -> Meter:
        live = self.live.get(meter_id)
        run = self.outbox.run
        if live is not None and run is not None and since.run == run.run:
            return Meter(live.spec, live.profile, since.state, live.injection)  # the live profile (and its caches)
        return self._model(since.run).meter(meter_id, since.state)

    def _model(self, run: int) -> Model:
        text = self.outbox.run_of(run).model
        found = self._models.get(text)
        if found is None:
            found = self._models[text] = Model.from_json(text)
        return found

    def _end_ts(self, since: Checkpoint) -> int:
        """The first second a segment's run did not produce."""
        if since.closed:
            return since.next_ts
        run = self.outbox.run
        live = self.live.get(since.meter)
        if live is not None and run is not None and since.run == run.run:
            return live.state.next_ts
        return self.outbox.run_of(since.run).horizon


@dataclass(frozen=True, slots=True)
class Resumed:
    """A restarting meter: its state after everything its last run may have published, and ``acked_upto``."""

    state: MeterState
    acked_upto: int | None


def resume(outbox: Outbox, meter_ids: Iterable[str]) -> dict[str, Resumed]:
    """Where each meter with a checkpoint continues: its newest checkpoint stepped up to its run's horizon (a closed
    checkpoint as it is); a meter known only to an earlier version's outbox continues after its last reading there."""
    reproducer = Reproducer(outbox)
    out = {}
    for meter_id in meter_ids:
        latest = outbox.latest(meter_id)
        if latest is None:
            legacy = outbox.legacy_last(meter_id)
            if legacy is not None:
                out[meter_id] = Resumed(*legacy)
            continue
        state = latest.state
        if not latest.closed:
            meter = reproducer._model(latest.run).meter(meter_id, state)
            advance(meter, outbox.run_of(latest.run).horizon)
            state = meter.state
        out[meter_id] = Resumed(state, latest.acked_upto)
    return out
