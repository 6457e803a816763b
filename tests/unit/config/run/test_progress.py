"""config.run.progress: a few lines for long work, none for quick work, bounded whatever the counts."""

from __future__ import annotations

import random

import pytest

from config.run.progress import Progress


def _lines(progress: Progress, updates: list[tuple[int, int, float, int | None]]) -> list[str]:
    out = []
    for done, total, now, events in updates:
        line = progress.update(done, total, now, events)
        if line is not None:
            out.append(line)
    return out


def test_a_long_start_up_reports_every_few_seconds_then_once_when_done() -> None:
    progress = Progress("connected")
    # 10,000 meters at 500/s, polled once a second: 20 s of work.
    updates = [(min(500 * t, 10_000), 10_000, float(t), None) for t in range(0, 26)]
    assert _lines(progress, updates) == [
        "connected 2,500/10,000, 500/s",
        "connected 5,000/10,000, 500/s",
        "connected 7,500/10,000, 500/s",
        "connected 10,000/10,000, 500/s",
    ]


def test_quick_work_prints_nothing() -> None:
    progress = Progress("connected")
    assert _lines(progress, [(0, 3, 0.0, None), (2, 3, 1.0, None), (3, 3, 2.0, None), (3, 3, 60.0, None)]) == []


def test_nothing_before_the_first_update_finds_work_unfinished() -> None:
    progress = Progress("connected")
    assert progress.update(3, 3, 100.0) is None  # steady state: no episode
    assert progress.update(1, 3, 101.0) is None  # an episode begins here
    assert progress.update(1, 3, 105.9) is None
    assert progress.update(1, 3, 106.0) == "connected 1/3, 0.0/s"


def test_a_stuck_episode_says_so_once_and_then_only_when_the_counts_move() -> None:
    progress = Progress("connected", every_s=5.0)
    updates: list[tuple[int, int, float, int | None]] = [(0, 100, float(t), None) for t in range(0, 3600)]
    assert _lines(progress, updates) == ["connected 0/100, 0.0/s"]
    assert progress.update(40, 100, 3600.0) == "connected 40/100, 0.0/s"  # 40 in 3595 s
    assert progress.update(40, 100, 3700.0) is None


def test_the_rate_is_of_events_while_done_falls_and_rises() -> None:
    progress = Progress("connected")
    # A reconnect storm: every meter lost at once, back at 200 connections a second; events count connections made.
    assert progress.update(0, 1000, 0.0, 1000) is None
    assert progress.update(1000 - 1000 + 1000, 1000, 5.0, 2000) is None  # back before any line: quiet
    assert progress.update(0, 1000, 10.0, 2000) is None
    assert progress.update(500, 1000, 15.0, 3000) == "connected 500/1,000, 200/s"
    assert progress.update(1000, 1000, 17.5, 3500) == "connected 1,000/1,000, 200/s"


def test_at_most_two_lines_per_period_whatever_the_counts() -> None:
    progress = Progress("connected", every_s=5.0)
    rng = random.Random(1)
    times = []
    for i in range(100_000):  # a fleet flapping every 10 ms for 1,000 s, complete now and then
        now = i * 0.01
        done = 10_000 if rng.random() < 0.002 else 10_000 - rng.choice((1, 2, 3))
        if progress.update(done, 10_000, now, i) is not None:
            times.append(now)
    assert len(times) > 100, "a flapping fleet is reported"
    for start in times:  # any 5 s window holds at most two lines
        assert sum(start <= t < start + 5.0 for t in times) <= 2


def test_unit_and_rate_format() -> None:
    progress = Progress("history: reloaded", unit="meters", every_s=1.0)
    assert progress.update(0, 20_000, 0.0) is None
    assert progress.update(12_345, 20_000, 1.0) == "history: reloaded 12,345/20,000 meters, 12,345/s"
    assert progress.update(12_350, 20_000, 3.0) == "history: reloaded 12,350/20,000 meters, 2.5/s"


def test_every_s_must_be_positive() -> None:
    with pytest.raises(ValueError, match="every_s"):
        Progress("x", every_s=0)
