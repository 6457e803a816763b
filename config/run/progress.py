"""Progress lines for work that can take long with a big fleet (pure: counts and the time are arguments).

A fleet of 10,000 meters coming online, or a bridge reloading or announcing 10,000 meters, would otherwise log a line
per meter or nothing at all. ``Progress`` turns counts into a few lines such as ``connected 4,200/10,000, 512/s``:

- An *episode* begins at the first ``update`` that finds the work unfinished (``done < total``) and ends at the first
  that finds it finished. A progress line is due ``every_s`` after the episode began and then at most every
  ``every_s``, only if the counts moved since the previous line (a broker that stays down gives one line, not one
  every few seconds for an hour).
- When an episode that printed a line ends, one more line says so (``connected 10,000/10,000, 980/s``). An episode
  shorter than ``every_s`` prints nothing: quick work stays quiet.

So at most two lines every ``every_s``, whatever the fleet's size. The rate is of ``events`` (a count that only grows,
``done`` by default) per second since the previous line: connections made, say, while ``done`` (meters connected now)
may also fall. Times in seconds of whatever monotonic clock the caller uses.
"""

from __future__ import annotations

from typing import Final

PROGRESS_EVERY_S: Final = 5.0


def _rate(per_s: float) -> str:
    return f"{per_s:,.0f}" if per_s >= 10 else f"{per_s:.1f}"


class Progress:
    """Turns ``(done, total, now)`` into an occasional line: ``<what> <done>/<total><unit>, <rate>/s``."""

    def __init__(self, what: str, unit: str = "", every_s: float = PROGRESS_EVERY_S) -> None:
        if not every_s > 0:
            raise ValueError("every_s must be > 0")
        self.what = what
        self.unit = f" {unit}" if unit else ""
        self.every_s = every_s
        # (when, done, events) at the episode's start or its last line; None while there is no episode
        self._mark: tuple[float, int, int] | None = None
        self._printed = False  # the episode printed a line

    def update(self, done: int, total: int, now: float, events: int | None = None) -> str | None:
        """The line due now, if any: ``done`` of ``total`` finished at ``now``; ``events`` counts what the rate is
        of (``done`` if None)."""
        events = done if events is None else events
        mark = self._mark
        if done >= total:
            line = self._line(mark, done, total, now, events) if mark is not None and self._printed else None
            self._mark, self._printed = None, False
            return line
        if mark is None:
            self._mark, self._printed = (now, done, events), False
            return None
        if now - mark[0] < self.every_s or (self._printed and mark[1:] == (done, events)):
            return None
        return self._line(mark, done, total, now, events)

    def _line(self, mark: tuple[float, int, int], done: int, total: int, now: float, events: int) -> str:
        span_s = now - mark[0]
        per_s = (events - mark[2]) / span_s if span_s > 0 else 0.0
        self._mark, self._printed = (now, done, events), True
        return f"{self.what} {done:,}/{total:,}{self.unit}, {_rate(max(per_s, 0.0))}/s"
