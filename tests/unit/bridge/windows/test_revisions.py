"""bridge.windows.revisions and its users: the late log, the windows late seconds revise (coalesced), history's late
detection, ``event: revision`` on SSE streams (no id, never a stale cached rendering, none for legacy streams),
baselines recomputed from corrected data, the republisher's choice, and the aggregates store corrected on disk."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from flask import Flask

from bridge.http.sessions import StreamSpec
from bridge.http.state import AppState
from bridge.http.streaming import events
from bridge.ingest.history import History
from bridge.ingest.store import ReadingStore
from bridge.windows.revisions import EVERYTHING, LateLog, LateSeconds, merge_spans, revised_starts
from bridge.windows.streams import WindowCursor
from config.wire import Reading
from tests.support.bridgeapp import app_state
from tests.unit.bridge.republish.test_aggregates import AGG_A, Rig
from tests.unit.bridge.republish.test_aggregates import feed as feed_republish

T0 = 1_704_067_200  # 2024-01-01T00:00:00Z, a UTC midnight
UTC = ZoneInfo("UTC")


def _reading(ts: int, overall_w: float = 1000.0, meter: str = "A") -> Reading:
    return Reading(meter, ts - T0, ts, 0.0, 0.0, overall_w, 0.0, 0.0, (ts - T0) / 3600)


# --- the log ---


def test_log_numbers_late_seconds_and_answers_since_a_revision() -> None:
    log = LateLog(size=8)
    assert log.since(0) == LateSeconds(0)
    assert [log.record(ts) for ts in (50, 10, 30, 10)] == [1, 2, 3, 4]
    assert log.since(0) == LateSeconds(4, (10, 30, 50))  # ascending, each once
    assert log.since(2) == LateSeconds(4, (10, 30))
    assert log.since(4) == LateSeconds(4)
    assert not log.since(4)


def test_a_reader_behind_the_exact_log_gets_the_spans_it_missed() -> None:
    log = LateLog(size=4, block=2, blocks=2)
    for ts in range(100, 112):  # revisions 1..12 (second 99 + revision); 9..12 exact; 1..8 spilled in pairs
        log.record(ts)
    exact = (108, 109, 110, 111)
    assert log.since(8) == LateSeconds(12, exact)
    assert log.since(6) == LateSeconds(12, exact, ((106, 107),))
    assert log.since(3) == LateSeconds(12, exact, ((102, 107),))  # the summaries of revisions 3..8, merged
    # revisions 1 and 2 fell out of the summaries too (two closed and the open one kept): anything may have changed
    assert log.since(1).spans == (EVERYTHING,)
    assert log.since(1).seconds == exact


def test_merge_spans() -> None:
    assert merge_spans([(10, 20), (1, 3), (4, 5), (15, 30), (40, 40)]) == ((1, 5), (10, 30), (40, 40))
    assert merge_spans([]) == ()


def test_log_bounds_must_be_positive() -> None:
    with pytest.raises(ValueError, match="must be >= 1"):
        LateLog(size=0)


# --- which windows they revise ---


def test_sixty_late_seconds_in_one_window_revise_it_once() -> None:
    late = LateSeconds(60, tuple(range(T0 + 60, T0 + 120)))
    assert revised_starts(late, T0, T0 + 600, 60, UTC) == ([T0 + 60], 0)
    assert revised_starts(late, T0, T0 + 600, 5, UTC) == (list(range(T0 + 60, T0 + 120, 5)), 0)


def test_only_windows_in_the_given_range_are_revised() -> None:
    late = LateSeconds(4, (T0 + 2, T0 + 17, T0 + 33, T0 + 61))
    assert revised_starts(late, T0 + 10, T0 + 60, 10, UTC) == ([T0 + 10, T0 + 30], 0)
    assert revised_starts(late, T0 + 60, T0 + 60, 10, UTC) == ([], 0)


def test_spans_revise_every_window_they_overlap_clipped() -> None:
    late = LateSeconds(9, (T0 + 5,), ((T0 + 25, T0 + 41), EVERYTHING))
    starts, skipped = revised_starts(late, T0, T0 + 50, 10, UTC)
    assert (starts, skipped) == ([T0, T0 + 10, T0 + 20, T0 + 30, T0 + 40], 0)
    assert revised_starts(LateSeconds(1, (), ((T0 + 25, T0 + 41),)), T0, T0 + 50, 10, UTC)[0] == [
        T0 + 20,
        T0 + 30,
        T0 + 40,
    ]


def test_at_most_limit_windows_the_newest_and_the_rest_counted() -> None:
    late = LateSeconds(100, tuple(range(T0, T0 + 100, 10)))
    assert revised_starts(late, T0, T0 + 100, 10, UTC, limit=3) == ([T0 + 70, T0 + 80, T0 + 90], 7)
    starts, skipped = revised_starts(LateSeconds(1, (), (EVERYTHING,)), T0, T0 + 100, 10, UTC, limit=3)
    assert starts == [T0 + 70, T0 + 80, T0 + 90]
    assert skipped == 7


def test_the_short_window_before_midnight() -> None:
    late = LateSeconds(1, (T0 - 1,))  # the last second of 2023-12-31: 86,400 % 7 = 6, so a 6 s window ends the day
    assert revised_starts(late, T0 - 100, T0 + 100, 7, UTC) == ([T0 - 6], 0)


# --- history ---


def test_history_logs_readings_below_the_watermark_only() -> None:
    history = History(3600)
    assert history.late_revision("A") == 0
    for ts in (T0, T0 + 1, T0 + 5):  # extending the watermark: not late (T0+2..4 are a gap for now)
        assert history.add(_reading(ts))
    assert history.late_revision("A") == 0
    assert history.add(_reading(T0 + 3))
    assert not history.add(_reading(T0 + 3))  # a duplicate is not late again
    assert not history.add(Reading("A", 0, T0 - 3600, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0))  # too old: refused, not late
    assert history.late_revision("A") == 1
    assert history.late_since("A", 0) == LateSeconds(1, (T0 + 3,))
    assert history.late_since("B", 0) == LateSeconds(0)


# --- streams ---


def _app_state(app: Flask) -> AppState:
    fleet = app_state(app)
    for ts in range(T0, T0 + 21):
        if ts not in (T0 + 6, T0 + 7):  # two seconds missing in window [T0+5, T0+10)
            fleet.core.history.add(_reading(ts, 1000.0))
    return fleet


def _stream(fleet: AppState, start: int | None, legacy: bool = False) -> Iterator[bytes]:
    """The stream's events one by one (a write may hold several: the windows already final go out together)."""
    spec = StreamSpec("test", "A", 5, None, paced=False)
    cursor = WindowCursor(5, fleet.core.settings.grace_s, fleet.core.zone, start=start)
    stream = events(fleet, spec, cursor, legacy, paced=False)
    assert next(stream).startswith(b"retry:")
    return (event + b"\n\n" for chunk in stream for event in chunk.split(b"\n\n") if event)


def _parse(raw: bytes) -> dict[str, str]:
    fields = dict(line.split(": ", 1) for line in raw.decode().strip().split("\n"))
    return fields


def test_a_late_second_in_a_sent_window_sends_one_revision_without_id(app: Flask) -> None:
    fleet = _app_state(app)
    stream = _stream(fleet, T0)  # resumed after a Last-Event-ID of T0
    sent = [_parse(next(stream)) for _ in range(4)]  # [T0, T0+5), [T0+5, T0+10) with 3 samples, ..., [T0+15, T0+20)
    assert [json.loads(event["data"])["samples"] for event in sent] == [5, 3, 5, 5]
    stale = json.loads(sent[1]["data"])
    fleet.core.history.add(_reading(T0 + 6, 4000.0))
    fleet.core.history.add(_reading(T0 + 7, 4000.0))  # two late seconds, one window: one revision
    revision = _parse(next(stream))
    assert set(revision) == {"event", "data"}  # no id: Last-Event-ID resumption is unaffected
    assert revision["event"] == "revision"
    doc = json.loads(revision["data"])
    assert set(doc) == set(stale)  # the window event's own format
    assert (doc["window_start"], doc["samples"], doc["Overall"]) == ("2024-01-01T00:00:05Z", 5, 2.2)
    for ts in range(T0 + 21, T0 + 26):
        fleet.core.history.add(_reading(ts, 1000.0))
    following = _parse(next(stream))  # then the stream carries on with its next window
    assert (following["id"], json.loads(following["data"])["samples"]) == (str(T0 + 25), 5)
    assert fleet.telemetry.revisions_emitted == 1

    # The event cache never serves the stale rendering: another stream sending that window gets the corrected one.
    other = _stream(fleet, T0)
    assert [json.loads(_parse(next(other))["data"])["samples"] for _ in range(2)] == [5, 5]


def test_no_revision_for_windows_the_stream_never_sent(app: Flask) -> None:
    fleet = _app_state(app)
    stream = _stream(fleet, None)  # live: starts at the newest final window, [T0+15, T0+20)
    assert _parse(next(stream))["id"] == str(T0 + 20)
    fleet.core.history.add(_reading(T0 + 6))  # in a window before the stream began
    fleet.core.history.add(_reading(T0 + 21))
    fleet.core.history.add(_reading(T0 + 25))  # makes [T0+20, T0+25) final
    event = _parse(next(stream))
    assert event.get("event") is None
    assert event["id"] == str(T0 + 25)


def test_legacy_streams_get_no_revisions(app: Flask) -> None:
    fleet = _app_state(app)
    stream = _stream(fleet, T0, legacy=True)
    for _ in range(4):
        next(stream)
    fleet.core.history.add(_reading(T0 + 6))
    for ts in range(T0 + 21, T0 + 26):
        fleet.core.history.add(_reading(ts, 1000.0))
    event = _parse(next(stream))
    assert "event" not in event
    assert event["id"] == str(T0 + 25)


# --- statistics, republishing, the store ---


def test_baselines_are_recomputed_after_a_late_reading(app: Flask) -> None:
    fleet = _app_state(app)
    before = fleet.core.baselines.get("A", 5)
    assert before is not None
    assert fleet.core.baselines.refresh_stale() == 0
    fleet.core.history.add(_reading(T0 + 6))
    assert fleet.core.baselines.refresh_stale() == 1
    after = fleet.core.baselines.get("A", 5)
    assert after is not None
    assert after.stats.samples == before.stats.samples + 1


def test_only_the_newest_published_window_is_published_again() -> None:
    rig = Rig()
    rig.step()
    feed_republish(rig.history, "A", T0, T0 + 30)
    feed_republish(rig.history, "A", T0 + 31, T0 + 61)  # T0+30 missing
    rig.step()
    feed_republish(rig.history, "A", T0 + 61, T0 + 90)
    feed_republish(rig.history, "A", T0 + 91, T0 + 121)  # T0+90 missing
    rig.step()
    assert [d["samples"] for d in rig.publisher.docs(AGG_A)] == [59, 59]
    rig.publisher.clear()

    feed_republish(rig.history, "A", T0 + 90, T0 + 91)  # late, in the newest window published (the retained state)
    assert rig.step() == 1
    (revised,) = rig.publisher.docs(AGG_A)
    assert (revised["window_start"], revised["samples"]) == ("2024-01-01T00:01:00Z", 60)
    assert rig.republisher.revised == 1
    assert rig.step() == 0  # once

    feed_republish(rig.history, "A", T0 + 30, T0 + 31)  # late, in an older window: HA's state never goes back
    assert rig.step() == 0
    assert len(rig.publisher.docs(AGG_A)) == 1


def test_a_late_reading_in_a_window_published_in_the_same_pass_is_in_it() -> None:
    rig = Rig()
    rig.step()
    feed_republish(rig.history, "A", T0, T0 + 30)
    feed_republish(rig.history, "A", T0 + 31, T0 + 61)
    rig.step()
    feed_republish(rig.history, "A", T0 + 61, T0 + 121)
    feed_republish(rig.history, "A", T0 + 30, T0 + 31)  # late, then the next window final: no republication
    assert rig.step() == 1
    assert [d["window_start"] for d in rig.publisher.docs(AGG_A)] == ["2024-01-01T00:00:00Z", "2024-01-01T00:01:00Z"]


def test_aggregates_on_disk_take_late_readings(tmp_path: Path) -> None:
    store = ReadingStore(tmp_path, retention_s=86_400, mode="aggregates")
    history = History(3600, store)
    for ts in range(T0, T0 + 120):
        if ts != T0 + 30:
            history.add(_reading(ts, 2000.0))
    assert store.flush()
    history.add(_reading(T0 + 30, 5000.0))  # late: the minute it falls in was written already
    history.add(_reading(T0 + 31, 9000.0))  # a duplicate: not counted twice
    assert store.flush()
    rows = (
        sqlite3.connect(tmp_path / "bridge.sqlite3")
        .execute("SELECT start, overall_sum, overall_n, seconds, overall_kwh FROM minutes ORDER BY start")
        .fetchall()
    )
    store.close()
    assert rows == [(T0, 59 * 2.0 + 5.0, 60, 60, 59 / 3600), (T0 + 60, 120.0, 60, 60, 119 / 3600)]
