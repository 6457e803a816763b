"""Republishing for Home Assistant and other MQTT consumers, from a background thread.

Every final window of every meter, for each interval of ``settings.agg_intervals``, goes out retained (QoS 1) on
``meters/<id>/agg/<N>s``: the SSE event's JSON (``bridge.windows.document.window_document``: mean kW per channel,
samples, and colours against the same baseline as the streams, ``bridge.services.baseline.window_status``) plus the
energy registers (kWh) of the last second received in the window, ``ac_kwh``, ``geyser_kwh``, ``overall_kwh``
(``null`` if it received none). Windows are final by event time exactly as for the streams
(``bridge.windows.streams.WindowCursor``, ``settings.grace_s``): one cursor per (meter, interval), starting live at
the newest final window when the meter is first heard. A meter already in history at the first pass (reloaded from
disk after a restart) counts as heard once its watermark moves: the windows of the gap while the bridge was down would
all be empty.

Late readings (``bridge.windows.revisions``) that fall in a window already published: the retained message is the
sensor's current state, so an older window is never published again (Home Assistant's state would jump back in time);
only the newest window published for a (meter, interval), if a late reading falls in it before the next window is final,
is published again, corrected (``revised`` counts those).

With ``settings.ha_discovery``, Home Assistant device discovery (``bridge.republish.discovery``) goes out retained for
every meter heard and every configured household: once each, again on every new connection to the broker (it may have
lost its retained messages), and again whenever Home Assistant says ``online`` on ``<ha_prefix>/status``.

Nothing here runs on the MQTT thread except ``ha_status``, which only sets an event (``routes`` names the topic
``bridge.runtime`` routes to it); a failing pass is logged and the loop carries on.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Final

from bridge.ingest.history import History
from bridge.ingest.ticker import Ticker
from bridge.republish.discovery import HA_ONLINE, ORIGIN_NAME, Origin, device_config, ha_status_topic
from bridge.services.baseline import Baselines, window_status
from bridge.windows.aggregate import Window, make_window
from bridge.windows.document import window_document
from bridge.windows.revisions import LateSeconds, revised_starts
from bridge.windows.streams import WindowCursor
from config.run.progress import Progress
from config.settings import Settings
from config.topics import AGGREGATE_QOS, aggregate_topic

log = logging.getLogger(__name__)

# publish(topic, payload, qos, retain) -> whether the client took it
Publish = Callable[[str, bytes, int, bool], bool]

POLL_S: Final = 0.25  # wall seconds between passes
MAX_WINDOWS_PER_PASS: Final = 500  # per (meter, interval): a long backlog drains over several passes
ENERGY_DECIMALS: Final = 4  # kWh to 0.1 Wh, as on the wire
_LOG_EVERY: Final = 1000


def aggregate_document(
    window: Window, status: dict[str, str], level: str, energy: tuple[float, float, float] | None
) -> dict[str, object]:
    """The aggregate message: the SSE event's object plus the energy registers (kWh) at the end of the window."""
    doc = window_document(window, status, level)
    registers: Iterable[float | None] = energy if energy is not None else (None, None, None)
    for name, value in zip(("ac_kwh", "geyser_kwh", "overall_kwh"), registers, strict=True):
        doc[name] = None if value is None else round(value, ENERGY_DECIMALS)
    return doc


def encode(doc: dict[str, object]) -> bytes:
    """One line of UTF-8 JSON."""
    return json.dumps(doc, allow_nan=False, separators=(",", ":")).encode("utf-8")


def package_version() -> str:
    """The installed version of this project."""
    try:
        return importlib.metadata.version(ORIGIN_NAME)
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


def default_origin(settings: Settings) -> Origin:
    """The discovery origin: this project, its version, and the bridge's HTTP landing page as support URL."""
    host = settings.http_host
    if host in ("", "0.0.0.0", "::"):  # bound to every interface: name the machine instead
        host = socket.gethostname()
    if ":" in host:
        host = f"[{host}]"
    return Origin(ORIGIN_NAME, package_version(), f"http://{host}:{settings.http_port}/")


class Republisher:
    """Finds final windows and publishes them (and the discovery messages) through ``publish``; ``step`` is one
    pass (what the tests call), ``start`` runs passes in a thread until ``stop``."""

    def __init__(
        self,
        history: History,
        baselines: Baselines,
        settings: Settings,
        publish: Publish,
        *,
        connection: Callable[[], int | None] = lambda: 1,
        origin: Origin | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.history = history
        self.clock = clock  # wall time, for the progress lines of a long discovery only
        self.baselines = baselines
        self.publish = publish
        self.connection = connection  # number of the broker connection, None while disconnected
        self.intervals = settings.agg_intervals
        self.grace_s = settings.grace_s
        self.tz = settings.zone()
        self.households = settings.owned_households()  # a shard (FLEET_SHARD) announces only its own
        self.owns = settings.owns
        self.prefix = settings.ha_prefix
        # The entities need this bridge too (bridge.republish.discovery).
        self.bridge_status = settings.bridge_status_topic()
        # The sensors read the first interval's aggregates: without one there is nothing to discover.
        self.discovery = settings.ha_discovery and bool(settings.agg_intervals)
        if settings.ha_discovery and not settings.agg_intervals:
            log.warning("FLEET_HA_DISCOVERY is on but FLEET_AGG_INTERVALS is empty: no discovery published")
        self.origin = origin if origin is not None else default_origin(settings)
        self.published = 0
        self.failed = 0
        self.revised = 0  # newest windows published again after a late reading corrected them
        self._cursors: dict[tuple[str, int], WindowCursor] = {}
        self._newest: dict[tuple[str, int], tuple[int, int]] = {}  # the last window published per (meter, interval)
        self._late: dict[str, int] = {}  # the late revision seen per meter
        self._stale: dict[str, int] | None = None  # watermarks of the meters held at the first pass
        self._announced: set[str] = set()
        self._announce_all = threading.Event()
        self._connection: int | None = None  # the connection discovery was last published on in full
        self._ticker = Ticker("fleet-republish", POLL_S, self.step, immediately=True)

    def request_discovery(self) -> None:
        """Publish every discovery message again on the next pass (safe on the network thread: it sets an event)."""
        self._announce_all.set()

    def routes(self) -> list[tuple[str, Callable[[bytes], None]]]:
        """The MQTT topics to route here, with their handlers: Home Assistant's status (with discovery only)."""
        return [(ha_status_topic(self.prefix), self.ha_status)] if self.discovery else []

    def ha_status(self, payload: bytes) -> None:
        """Home Assistant's birth/will message: ``online`` means it (re)started and wants discovery again."""
        if payload.strip() == HA_ONLINE:
            self.request_discovery()

    def step(self) -> int:
        """One pass: discovery that is due, then every final window not yet published; returns messages published."""
        connection = self.connection()
        if connection is None:
            return 0  # nothing is lost: windows and discovery wait for the connection
        if connection != self._connection:  # first connection, or a new session: the broker may have lost retained
            self._connection = connection
            self._announce_all.set()
        meters = [meter for meter in self.history.meters() if self.owns(meter)]
        if self._stale is None:
            self._stale = {meter: mark for meter in meters if (mark := self.history.watermark(meter)) is not None}
        sent = self._announce(sorted(set(self.households) | set(meters))) if self.discovery else 0
        for meter in meters:
            watermark = self.history.watermark(meter)
            if watermark is None or watermark <= self._stale.get(meter, watermark - 1):
                continue  # no reading yet, or none since the bridge started
            # Read before anything is rendered: a late reading after this is seen by the next pass.
            late = self.history.late_since(meter, self._late.get(meter, self.history.late_revision(meter)))
            self._late[meter] = late.revision
            for interval_s in self.intervals:
                sent += self._windows(meter, interval_s, watermark, late)
        return sent

    def _announce(self, meters: list[str]) -> int:
        if self._announce_all.is_set():
            self._announce_all.clear()
            due = meters
        else:
            due = [meter for meter in meters if meter not in self._announced]
        sent = 0
        progress = Progress("discovery: published", unit="meters")  # thousands of meters take seconds
        progress.update(0, len(due), self.clock())
        for done, meter in enumerate(due, 1):
            topic, payload = device_config(meter, self.prefix, self.intervals[0], self.origin, self.bridge_status)
            if self._send(topic, encode(payload)):
                self._announced.add(meter)
                sent += 1
            line = progress.update(done, len(due), self.clock())
            if line is not None:
                log.info("%s", line)
        return sent

    def _windows(self, meter: str, interval_s: int, watermark: int, late: LateSeconds) -> int:
        key = (meter, interval_s)
        cursor = self._cursors.get(key)
        if cursor is None:
            cursor = self._cursors[key] = WindowCursor(interval_s, self.grace_s, self.tz)
        cursor.resolve(watermark, self.history.first_ts(meter))
        sent, fresh = 0, False
        for _ in range(MAX_WINDOWS_PER_PASS):
            due = cursor.due(watermark)
            if due is None:
                break
            sent += self._send(aggregate_topic(meter, interval_s), self._aggregate(meter, interval_s, *due))
            self._newest[key] = due
            fresh = True  # rendered after ``late`` was read: it holds those late seconds already
            cursor.advance()  # a refused publish is counted and logged, not retried: the next window supersedes it
        newest = self._newest.get(key)
        if fresh or not late or newest is None or not revised_starts(late, *newest, interval_s, self.tz)[0]:
            return sent
        if self._send(aggregate_topic(meter, interval_s), self._aggregate(meter, interval_s, *newest)):
            self.revised += 1  # the retained state corrected in place; older windows are not published again
            sent += 1
        return sent

    def _aggregate(self, meter: str, interval_s: int, start: int, end: int) -> bytes:
        samples, present = self.history.samples(meter, start, end)
        window = make_window(meter, interval_s, start, end, samples, present)
        status, worst = window_status(window, self.baselines.get(meter, interval_s), self.tz)
        return encode(aggregate_document(window, status, worst, self.history.last_energy(meter, start, end)))

    def _send(self, topic: str, payload: bytes) -> bool:
        if self.publish(topic, payload, AGGREGATE_QOS, True):
            self.published += 1
            return True
        self.failed += 1
        if self.failed == 1 or self.failed % _LOG_EVERY == 0:
            log.warning("publish #%d refused by the MQTT client (topic %s)", self.failed, topic)
        return False

    def start(self) -> None:
        """Run passes every ``POLL_S`` in a daemon thread until ``stop``."""
        self._ticker.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread after its current pass."""
        self._ticker.stop(timeout)

    @property
    def _thread(self) -> threading.Thread | None:
        return self._ticker.thread
