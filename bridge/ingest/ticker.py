"""A background pass, repeated: ``step`` every ``period_s`` in a daemon thread until ``stop``.

Shared by the bridge's background workers (baselines refresh, republishing, gap repair). A failing pass is logged
(the first, then every ``LOG_EVERY``-th) and the next pass runs anyway: a bug must not stop the work for good.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Final

log = logging.getLogger(__name__)

LOG_EVERY: Final = 1000


class Ticker:
    """Runs ``step`` in a thread named ``name``: first at once or after one period (``immediately``), then every
    ``period_s`` wall seconds."""

    def __init__(self, name: str, period_s: float, step: Callable[[], object], immediately: bool = False) -> None:
        self.name = name
        self.period_s = period_s
        self.step = step
        self.immediately = immediately
        self.errors = 0
        self.thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        """Start the thread (once)."""
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self.thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread after its current pass."""
        self._stop.set()
        if self.thread is not None:
            self.thread.join(timeout)

    def _run(self) -> None:
        if not self.immediately and self._stop.wait(self.period_s):
            return
        while not self._stop.is_set():
            try:
                self.step()
            except Exception:
                self.errors += 1
                if self.errors == 1 or self.errors % LOG_EVERY == 0:
                    log.exception("%s: pass failed (%d so far)", self.name, self.errors)
            self._stop.wait(self.period_s)
