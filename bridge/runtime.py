"""The bridge's composition root: ``BridgeRuntime`` builds one app's resources (``bridge.services.state.BridgeState``)
and the background parts around them, starts the parts in order and stops them in reverse.

``BridgeRuntime.for_settings(settings)`` is what ``python -m bridge`` serves: SQLite under ``settings.data_dir``
(history reloaded from it when the runtime starts), the MQTT subscriber, the republisher and the gap repairer.
``BridgeRuntime.in_memory(settings)`` has no broker and no disk: history, ingest and the baselines (what the unit tests
serve). The HTTP layer (``bridge.http.app.create_app``) only reads the runtime's state; its owner starts and stops it.

Order: store (history reloaded), baselines, subscriber, republisher, repairer. Stopped in reverse: the repairer and the
republisher publish through the subscriber, so they stop before it; the subscriber publishes the bridge's retained
``offline`` as it stops, so it stops while its connection is up; the store closes last, committing what is queued.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from bridge.ingest.history import History
from bridge.ingest.messages import Ingest
from bridge.ingest.repair import GapRepairer
from bridge.ingest.store import ReadingStore
from bridge.ingest.subscriber import Subscriber
from bridge.republish.aggregates import Republisher
from bridge.services.state import BridgeState
from config.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Part:
    """One background part of a runtime: how it starts and how it stops. ``held``: it holds a resource from the moment
    it is built (an open store and its writer thread), so ``stop`` stops it even if ``start`` never reached it."""

    name: str
    start: Callable[[], object]
    stop: Callable[[], object]
    held: bool = False


class BridgeRuntime:
    """``state`` and the ``parts`` that run around it. One owner calls ``start`` once and ``stop`` (not thread-safe)."""

    def __init__(self, state: BridgeState, parts: Sequence[Part] = ()) -> None:
        names = [part.name for part in parts]
        if len(set(names)) != len(names):
            raise ValueError(f"part names must differ: {names}")
        self.state = state
        self.parts = tuple(parts)
        self._live = [part.held for part in self.parts]  # per part: started (or held) and not stopped yet
        self._used = False  # start or stop has run: a runtime is started at most once

    @classmethod
    def in_memory(cls, settings: Settings) -> BridgeRuntime:
        """No broker, no disk: history, ingest and the baselines (``start`` starts their refresher)."""
        history = History(settings.history_s, None, settings.speed)
        state = BridgeState.build(settings, history, Ingest(history))
        return cls(state, [Part("baselines", state.baselines.start, state.baselines.stop)])

    @classmethod
    def for_settings(cls, settings: Settings) -> BridgeRuntime:
        """The bridge ``python -m bridge`` runs: the store (opened now), MQTT, republishing and gap repair."""
        store = ReadingStore(Path(settings.data_dir), settings.retention_s, settings.store, settings.speed)
        try:
            return cls._around(settings, store)
        except BaseException:
            store.close()  # its writer thread is running already
            raise

    @classmethod
    def _around(cls, settings: Settings, store: ReadingStore) -> BridgeRuntime:
        history = History(settings.history_s, store, settings.speed)
        ingest = Ingest(history)
        owned = None if settings.shard is None else settings.owned_households()
        if owned is not None:
            log.info(
                "shard %s: this bridge owns %d of %d households", settings.shard, len(owned), len(settings.households)
            )
        subscriber = Subscriber(
            settings.broker, ingest, settings.bridge_id, owned, status_topic=settings.bridge_status_topic()
        )
        repairer = GapRepairer(history, subscriber.publish, owns=settings.owns)
        # One counter of replays asked for: the repairer's, which /api/meters and /metrics read.
        state = BridgeState.build(settings, history, ingest, subscriber, repairer.seqs_requested)
        republisher = Republisher(
            history, state.baselines, settings, subscriber.publish, connection=subscriber.connection
        )
        parts = [
            Part("store", partial(_reload, history, store), store.close, held=True),
            Part("baselines", state.baselines.start, state.baselines.stop),  # refreshes quick statistics
            Part("subscriber", subscriber.start, subscriber.stop),
            Part("republisher", partial(_republish, republisher, subscriber), republisher.stop),
            Part("repairer", repairer.start, repairer.stop),
        ]
        return cls(state, parts)

    def start(self) -> None:
        """Start the parts in order. If one fails, those started before it are stopped (in reverse) and the error
        raised: a runtime is never left half running."""
        if self._used:
            raise RuntimeError("a BridgeRuntime starts once, before any stop")
        self._used = True
        for index, part in enumerate(self.parts):
            try:
                part.start()
            except BaseException:
                log.error("bridge runtime: %s failed to start; stopping what was started", part.name)
                self.stop()
                raise
            self._live[index] = True

    def stop(self) -> None:
        """Stop the parts started (or held) in reverse order; again, it does nothing. A part that fails to stop is
        logged and the ones before it still stop."""
        self._used = True
        for index in reversed(range(len(self.parts))):
            if not self._live[index]:
                continue
            self._live[index] = False
            part = self.parts[index]
            try:
                part.stop()
            except Exception:
                log.exception("bridge runtime: %s failed to stop", part.name)

    def running(self) -> list[str]:
        """Names of the parts started (or held) and not stopped, in order."""
        return [part.name for part, live in zip(self.parts, self._live, strict=True) if live]


def _reload(history: History, store: ReadingStore) -> None:
    """Refill history from the store (a restart goes on where the last run stopped)."""
    log.info("history: %d readings reloaded from %s", history.load(lambda line: log.info("%s", line)), store.path)


def _republish(republisher: Republisher, subscriber: Subscriber) -> None:
    """Route the republisher's topics (Home Assistant's status) through the subscriber, then start it."""
    for topic, handler in republisher.routes():
        subscriber.add_route(topic, handler)
    republisher.start()
