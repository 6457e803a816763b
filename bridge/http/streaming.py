"""One SSE stream: the loop that turns a stream's windows into events, paced, with heartbeats and resets.

Pull, not push: each stream reads the windows it owes its client straight from history when they are final, so there
is no per-client queue to fill; memory per client is constant, and a stuck client blocks only its own greenlet (its
socket write), never another stream or ingest. A client whose next window is older than history still holds (a paced
replay that fell days behind, a ``Last-Event-ID`` past retention) is told with ``event: reset`` and continues from the
oldest window held. A closed connection fails at the next write, at the latest the next heartbeat.

Pacing: a replay (``start_index``) sends history one event per interval of simulated time, at the fleet's speed
(``interval / FLEET_SPEED`` wall seconds), as the original played its file; ``pace=none`` sends history at once.
Either way the stream continues into live windows as they become final.

Revisions: a reading stored late (``bridge.windows.revisions``: gap repair, a meter's backlog) may fall in a window the
stream already sent. Each pass asks history for the late seconds since the revision the stream saw last (O(1) when there
are none) and sends ``event: revision`` once per affected window, whatever the number of late seconds in it: the
window's event again, recomputed, with no ``id:`` (``Last-Event-ID`` resumption is unaffected). Only windows the
connection sent (for a ``Last-Event-ID`` resumption: every window before it) that history still holds are revised. A
stream sleeps until its next window is final, its next heartbeat, or the meter's next late reading
(``History.wait_until``'s ``late_after``), whichever comes first: a revision goes out at once, and a stream costs
nothing between its windows. After a pass that found late readings it does not wake for late ones again for
``LATE_PAUSE_S``: a backlog of late readings wakes it at most that often, not once a reading.
``format=legacy`` streams get no revisions: their line does not say which window it is, and the Android widget's
``EventSource`` ignores named events anyway. Rendered events are cached with the meter's late revision in the key, so
a stale rendering of a revised window is never served.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator
from typing import Final

from bridge.http.sessions import StreamSpec
from bridge.http.sse import comment, frame, legacy_data, retry, window_data
from bridge.http.state import AppState
from bridge.ingest.history import History
from bridge.services.baseline import window_status
from bridge.windows.aggregate import make_window, window_start
from bridge.windows.revisions import LateSeconds, revised_starts
from bridge.windows.streams import WindowCursor
from config.wire import format_ts

# A stream that found late readings sleeps this long before a late reading may wake it again. Waking every stream
# every second to look for them (whether there were any or not) cost 1,000 streams of 60 s windows a pass a second
# each while a backlog drained (docs/performance.md, issue #13).
LATE_PAUSE_S: Final = 1.0
BATCH_WINDOWS: Final = 64  # window events at most in one write (about 20 KB)


def events(state: AppState, spec: StreamSpec, cursor: WindowCursor, legacy: bool, paced: bool) -> Iterator[bytes]:
    """The bytes of one stream: ``retry:`` first, then window events, resets and heartbeats, until the client leaves."""
    yield retry()
    state.telemetry.client_opened()
    try:
        yield from _loop(state, spec, cursor, legacy, paced)
    finally:  # the client went away (the server closes the generator) or the server stops
        state.telemetry.client_closed()


def _oldest(history: History, meter: str) -> int | None:
    """The oldest second history can still give for ``meter`` (memory or disk)."""
    candidates = [history.first_ts(meter)]
    if history.store is not None:
        candidates.append(history.store.oldest(meter))
    known = [c for c in candidates if c is not None]
    return min(known) if known else None


def _rendered(state: AppState, spec: StreamSpec, start: int, end: int, legacy: bool, revision: bool = False) -> bytes:
    core = state.core
    # The late revision is read before the samples: a rendering is never newer-labelled than the data it saw.
    generation = core.history.late_revision(spec.household)
    key = (spec.household, spec.interval_s, start, end, legacy, spec.by_hour, generation, revision)
    cached = state.events.get(key)
    if cached is not None:
        return cached
    samples, present = core.history.samples(spec.household, start, end)
    window = make_window(spec.household, spec.interval_s, start, end, samples, present)
    baseline = core.baselines.get(spec.household, spec.interval_s)
    status, worst = window_status(window, baseline, core.zone, spec.by_hour)
    data = legacy_data(window, status) if legacy else window_data(window, status, worst)
    event = frame(data, event="revision") if revision else frame(data, event_id=str(end))
    state.events.put(key, event)
    return event


def _reset(cursor: WindowCursor, oldest: int | None, interval_s: int, state: AppState) -> bytes | None:
    """If history no longer holds the cursor's window, move the cursor to the oldest one held and say so."""
    if cursor.start is None or oldest is None:
        return None
    resumed = cursor.first_whole(oldest)
    if cursor.start >= window_start(oldest, interval_s, cursor.tz):
        return None
    note = {
        "reason": "history no longer holds the next window",
        "skipped_from": format_ts(cursor.start),
        "resume_from": format_ts(resumed),
    }
    cursor.start = resumed
    state.telemetry.reset_sent()
    return frame(json.dumps(note), event="reset")


def _first_held(history: History, meter: str, cursor: WindowCursor) -> int | None:
    """Start of the oldest whole window the memory still holds for ``meter`` (a late second is always in memory:
    older ones are refused; and the disk is not asked, per stream, on every late reading)."""
    oldest = history.first_ts(meter)
    return None if oldest is None else cursor.first_whole(oldest)


def _revisions(
    state: AppState, spec: StreamSpec, cursor: WindowCursor, late: LateSeconds, sent_from: int | None
) -> Iterator[bytes]:
    """``event: revision`` for each window the stream sent that ``late`` touches, oldest first."""
    if sent_from is None or cursor.start is None or cursor.start <= sent_from:
        return  # nothing sent yet
    held = _first_held(state.core.history, spec.household, cursor)
    if held is None:
        return
    starts, skipped = revised_starts(late, max(sent_from, held), cursor.start, spec.interval_s, cursor.tz)
    if skipped:
        state.telemetry.revisions_skipped_by(skipped)
    for start in starts:
        yield _rendered(state, spec, start, cursor.next_start(start), False, revision=True)
        state.telemetry.revision_sent()


def _loop(state: AppState, spec: StreamSpec, cursor: WindowCursor, legacy: bool, paced: bool) -> Iterator[bytes]:
    history, meter, settings = state.core.history, spec.household, state.core.settings
    heartbeat_s = settings.heartbeat_s
    pace_s = spec.interval_s / settings.speed if paced and spec.start_index is not None else 0.0
    pause = threading.Event()  # never set: its wait() is an interruptible, gevent-friendly pause
    last_sent = last_event = time.monotonic() - pace_s
    seen = history.late_revision(meter)  # late readings before the stream began are in what it sends
    late_pass = -math.inf  # when a pass last found late readings (monotonic)
    sent_from = None if cursor.start is None else 0  # a resumption (Last-Event-ID): the client has every window before
    while True:
        if not legacy:
            late = history.late_since(meter, seen)  # before rendering: a late second after this is reported next pass
            if late.revision != seen:
                seen = late.revision
                late_pass = time.monotonic()
                revised = False
                for event in _revisions(state, spec, cursor, late, sent_from):
                    yield event
                    revised = True
                if revised:
                    last_sent = time.monotonic()
        watermark = history.watermark(meter)
        if watermark is not None and cursor.start is None:
            cursor.resolve(watermark, _oldest(history, meter))
        first_in_memory = history.first_ts(meter)
        if cursor.start is not None and first_in_memory is not None and cursor.start < first_in_memory:
            note = _reset(cursor, _oldest(history, meter), spec.interval_s, state)  # older than memory: ask the disk
            if note is not None:
                yield note
        due = cursor.due(watermark)
        now = time.monotonic()
        if due is not None and now >= last_event + pace_s:
            # Unpaced, a stream that is behind (history at once, a worker that was busy) sends the windows already
            # final in one write, up to BATCH_WINDOWS: one system call and one pass, not one each.
            batch: list[bytes] = []
            while due is not None and len(batch) < (1 if pace_s else BATCH_WINDOWS):
                start, end = due
                batch.append(_rendered(state, spec, start, end, legacy))
                if sent_from is None:
                    sent_from = start
                state.telemetry.window_sent()
                cursor.advance()
                due = cursor.due(watermark)
            yield b"".join(batch)
            last_sent = last_event = time.monotonic()
            continue
        wait = max(0.0, last_sent + heartbeat_s - now)
        if due is not None:  # final, but not yet its turn: a paced replay
            pause.wait(min(wait, LATE_PAUSE_S, last_event + pace_s - now))
        elif cursor.start is not None:  # sleep until the meter's stream reaches this window's end (+ grace)
            if legacy:  # no revisions: late readings do not concern it
                history.wait_until(meter, cursor.final_at(), wait)
            elif now < late_pass + LATE_PAUSE_S:  # it just looked at late readings: not again before the pause
                history.wait_until(meter, cursor.final_at(), min(wait, late_pass + LATE_PAUSE_S - now))
            else:  # or until a late reading comes (one before this call returns at once)
                history.wait_until(meter, cursor.final_at(), wait, late_after=seen)
        else:  # the meter's time is not known yet: any reading will do
            history.wait_for_watermark(meter, watermark, wait)
        if time.monotonic() >= last_sent + heartbeat_s:
            yield comment(f"heartbeat {format_ts(int(time.time()))}")
            last_sent = time.monotonic()
