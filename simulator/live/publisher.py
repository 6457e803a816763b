"""The I/O shell of the simulator: one MQTT connection per meter, all driven by one selector loop in one thread.

Each meter is a real MQTT client with its own client id, credentials and Last Will (``offline`` on its status topic),
so the broker reports each meter's availability. No thread per meter: each meter's ``config.mqtt.connection`` connection
(a minimal MQTT 3.1.1 client over a non-blocking socket; paho cost about twice the CPU per reading, see
docs/performance.md) is driven by a ``selectors`` loop, which is what lets one process hold 10,000 meters.

Publishing is scheduled against absolute simulated times (``SimClock``), never by sleeping after work, so it does not
drift; a loop that fell behind catches up, at most ``CATCH_UP_LIMIT`` readings per meter per pass. With jitter (fleet
mode) each meter publishes at its own offset into the second (``simulator.live.schedule.jitter_offset``). Work per pass
is proportional to what is due, not to the fleet: meters wait in a heap of next-due times, connections in a heap of
next-attempt times (paced: ``connect_rate`` per second, reconnects after a random share of an exponential back-off),
and only sockets that did something are re-registered with the selector.

Delivery (``simulator.live.delivery``): what reproduces each reading is in the outbox before the reading is published
(its run's horizon: the loop steps no meter past it, and moves it ahead in time; checkpoints every ``CHECKPOINT_S``,
``simulator.live.checkpoint``); a second's reading goes out alone on ``meters/<id>/reading``, several at once (catching
up, warm-up) as batches on ``meters/<id>/readings``. While a meter is disconnected its readings are held, not queued in
its connection; after the connection is back, and after a restart for whatever the broker never acknowledged, they are
reproduced from the outbox's checkpoints (``simulator.live.reproduce``) and sent as batches, oldest first, a few
messages in flight per meter (live readings go first). Replay requests from the bridge are answered the same way.
"""

from __future__ import annotations

import logging
import math
import random
import selectors
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Final

from config.mqtt.link import resolve
from config.run.progress import Progress
from config.settings import BrokerAddress
from config.wire import Reading, encode_reading
from simulator.live.backfill import Backfill
from simulator.live.checkpoint import CHECKPOINT_S, CHECKPOINT_SLICES, HORIZON_LEAD_S, HORIZON_RENEW_S
from simulator.live.clock import SimClock
from simulator.live.delivery import Delivery, HeldPayloads
from simulator.live.link import KEEPALIVE_S, MeterLink
from simulator.live.outbox import Outbox, OutboxWriter
from simulator.live.reproduce import Reproducer
from simulator.live.schedule import (
    DEFAULT_CONNECT_RATE,
    ConnectPacer,
    DueQueue,
    LatenessHistogram,
    jitter_offset,
)
from simulator.live.sockets import STOP_FLUSH_S, SocketService
from simulator.meters.fleet import Meter

log = logging.getLogger(__name__)

CATCH_UP_LIMIT: Final = 200
MAX_WAIT_S: Final = 0.25
STEP_S: Final = 0.025  # due readings are gathered at most this often (one outbox job each; the writer commits the
# jobs that queue up together), wall seconds, and at least twice per simulated second (an accelerated clock keeps
# sending each second's reading on its own)
LATE_BOUND_S: Final = 0.2  # the stop summary counts readings published within this of their schedule


def _delivery(outbox: Outbox | None, meter_id: str) -> Delivery:
    """A meter's delivery state: what its last run produced beyond what the broker acknowledged is sent again (the
    checkpoint this run started from: ``Outbox.begin_run``)."""
    start = None if outbox is None else outbox.latest(meter_id)
    if start is None:
        return Delivery()
    return Delivery(start.acked_upto, start.seq - 1 if start.seq > 0 else None)


class FleetLoop(SocketService, Backfill):
    """Steps every meter by the simulation clock and services every connection, in one thread."""

    def __init__(
        self,
        meters: Sequence[Meter],
        broker: BrokerAddress,
        clock: SimClock,
        wall: Callable[[], float] = time.monotonic,
        outbox: Outbox | None = None,
        keepalive_s: int = KEEPALIVE_S,
        *,
        jitter: bool = False,
        connect_rate: float = DEFAULT_CONNECT_RATE,
        hold_s: float = 0.0,
    ) -> None:
        self.meters = {m.meter_id: m for m in meters}
        for address in broker.addresses():  # host names now, once: getaddrinfo would block the loop
            try:
                resolve(address.host, address.port)
            except OSError as exc:
                log.warning("cannot resolve %s (%s); tried again at each connect", address.url(), exc)
        self.links = {
            m.meter_id: MeterLink(m.meter_id, broker, _delivery(outbox, m.meter_id), keepalive_s) for m in meters
        }
        self.clock = clock
        self.wall = wall
        self.outbox = outbox
        self.stop_event = threading.Event()
        self.lateness = LatenessHistogram()  # live readings, counted once every meter has been connected
        self._selector = selectors.DefaultSelector()
        self._registered: dict[str, tuple[socket.socket, int]] = {}
        self._touched: dict[str, MeterLink] = {}  # links whose socket may need (re-)registering this pass
        self._backlogged: dict[str, MeterLink] = {}  # links with held readings (insertion-ordered set)
        self._replaying: dict[str, MeterLink] = {}  # links with replay requests
        self._offsets = {m: jitter_offset(m) if jitter else 0.0 for m in self.meters}  # fraction of a sim second
        self._due = DueQueue()
        self._connects = DueQueue()
        self._pacer = ConnectPacer(connect_rate, self.wall())
        self._next_misc = 0.0
        self._next_step = 0.0
        self._step_s = min(STEP_S, 0.5 / clock.speed)
        self._started = self.wall()
        # No meter is stepped for the first ``hold_s`` wall seconds (a warm-up): a subscriber's very first session (the
        # bridge's, started with the meters by `make up`) hears nothing published before it subscribed, and a warm-up
        # goes out at tens of thousands of readings a second. Afterwards the meters catch up, oldest first, in seq
        # order (no gap for the bridge to ask replays for).
        self._hold_until = self._started + hold_s
        self._all_connected = False
        self._progress = Progress("connected")  # start-up and reconnect storms, a line every few seconds
        # Checkpoints and the horizon are written by the outbox's writer thread; held readings, backlogs and replays
        # are reproduced from them.
        self._writer = OutboxWriter(outbox) if outbox is not None else None
        self._reproducer = Reproducer(outbox, self.meters) if outbox is not None else None
        self._asked_horizon = 0 if self._writer is None else self._writer.horizon
        self._held_by_horizon = False  # the last step stopped at the horizon (its move not committed yet)
        self._held = HeldPayloads()  # held readings' payloads, while memory allows: not reproduced when sent
        # Each meter gets a checkpoint every CHECKPOINT_S, a tenth of the fleet at a time: a whole round at once cost
        # the loop 70 ms at 10,000 meters, and the writer as much again of the GIL.
        self._checkpoint_ids = list(self.meters)
        self._checkpoint_from = 0
        self._checkpoint_every_s = CHECKPOINT_S / CHECKPOINT_SLICES
        self._next_checkpoint = self._started + self._checkpoint_every_s
        if self._writer is not None:
            self._selector.register(self._writer.wakeup, selectors.EVENT_READ, None)
        for meter_id, meter in self.meters.items():
            self._due.push(self._due_wall(meter), meter_id)
            link = self.links[meter_id]
            link.on_lost = self._lost
            link.on_replay = self._replay_asked
            link.on_refused = self._refused
            self._connects.push(0.0, meter_id)
            if link.delivery.backlog:
                self._backlogged[meter_id] = link

    def stop(self) -> None:
        """Ask the loop to finish (safe from a signal handler or another thread)."""
        self.stop_event.set()

    def run(self) -> None:
        """Run until ``stop()``; then publish ``offline`` for every meter and disconnect cleanly."""
        # Python does not name its threads for the OS: this line lets a profiler or bench/publish.py tell them apart.
        log.info("threads: %s", ", ".join(f"{t.name}={t.native_id}" for t in threading.enumerate()))
        try:
            while not self.stop_event.is_set():
                self._pass()
        finally:
            self._shutdown()
            self._selector.close()
            if self._writer is not None:
                if self._writer.error is None:
                    # Nothing is stepped any more: where each meter stopped, exactly.
                    self._checkpoint(self._checkpoint_ids, closed=True)
                    if not self._writer.flush(STOP_FLUSH_S):
                        log.warning("outbox: the last checkpoints were not committed in %.0f s", STOP_FLUSH_S)
                self._writer.close()
            if self._all_connected:
                log.info(
                    "lateness of live readings since every meter was connected: %s",
                    self.lateness.summary(LATE_BOUND_S).line(),
                )
            else:
                log.info("lateness: not every meter was connected at once; nothing counted")

    def _due_wall(self, meter: Meter) -> float:
        """Wall time at which the meter's next reading is scheduled (end of its second plus the meter's offset)."""
        return self.clock.wall_at(meter.next_due_sim() + self._offsets[meter.meter_id])

    def _lost(self, link: MeterLink) -> None:
        self._touched[link.meter_id] = link
        link.retry_later(self.wall(), random.random())
        self._connects.push(link.next_attempt, link.meter_id)

    def _refused(self, link: MeterLink) -> None:
        link.resubscribe_later(self.wall(), random.random())
        assert link.resubscribe_at is not None
        self._connects.push(link.resubscribe_at, link.meter_id)  # the same queue as connects: paced, in time order

    def _connect_due(self, now: float) -> None:
        """Start the connections whose time has come, at most what the pacer allows."""
        if self._connects.next_at() is None or (self._connects.next_at() or 0.0) > now:
            return
        allowed = self._pacer.take(now, len(self._connects))
        for meter_id in self._connects.pop_due(now, allowed):
            link = self.links[meter_id]
            self._touched[meter_id] = link
            if link.client.socket() is not None:
                link.resubscribe(now)  # a connected meter is in this queue for its refused command subscription
                continue
            if not link.try_connect(now):
                self._connects.push(link.next_attempt, meter_id)

    def _pass(self) -> None:
        self._check_writer()
        now = self.wall()
        self._connect_due(now)
        if now >= self._next_step and now >= self._hold_until:
            self._step(now)
            # Catching up: the next step at once, as before (not while the horizon holds the meters back).
            behind = (self._due.next_at() or now + 1.0) <= now and not self._held_by_horizon
            self._next_step = now if behind else now + self._step_s
        if self._reproducer is not None:
            self._answer_replays(self._reproducer)
            self._send_backlog(self._reproducer)
        if self._writer is not None and now >= self._next_checkpoint:
            size = -(-len(self._checkpoint_ids) // CHECKPOINT_SLICES)
            ids = self._checkpoint_ids[self._checkpoint_from : self._checkpoint_from + size]
            self._checkpoint_from = (self._checkpoint_from + size) % max(1, len(self._checkpoint_ids))
            self._checkpoint(ids, closed=False)
            self._next_checkpoint = now + self._checkpoint_every_s
        if now >= self._next_misc:
            connected = connects = 0
            for link in self.links.values():
                if link.client.socket() is not None:
                    link.client.misc()
                    if link.client.want_write() or link.client.socket() is None:
                        self._touched[link.meter_id] = link
                    connected += link.connected
                connects += link.connects
            self._next_misc = now + 1.0
            line = self._progress.update(connected, len(self.links), now, connects)
            if line is not None:
                log.info("%s", line)
            if not self._all_connected and connected == len(self.links):
                self._all_connected = True
                log.info("all %d meters connected after %.1f s", len(self.links), now - self._started)
        wake = min(self._due.next_at() or now + MAX_WAIT_S, now + MAX_WAIT_S)
        wake = max(wake, self._next_step)
        if now < self._hold_until:  # readings due but held: not a reason to wake at once
            wake = max(wake, min(self._hold_until, now + MAX_WAIT_S))
        if self._connects.next_at() is not None:
            wake = min(wake, max(self._connects.next_at() or 0.0, self._pacer.next_at()))
        self._service(wake)

    def _step(self, now: float) -> None:
        """Take the meters whose next reading is due, up to the run's committed horizon, and publish their readings
        (the outbox holds what reproduces them: their run's checkpoints and horizon)."""
        sim_now = self.clock.sim_at(now)
        until = now
        if self._writer is not None:
            self._renew_horizon(sim_now)
            horizon = self._writer.horizon
            self._held_by_horizon = sim_now > horizon
            if self._held_by_horizon:  # no reading of a second at or past the horizon: wait for its move to commit
                sim_now, until = float(horizon), self.clock.wall_at(horizon)
        runs = []
        for meter_id in self._due.pop_due(until):
            meter = self.meters[meter_id]
            runs.append((meter, meter.due(sim_now - self._offsets[meter_id], CATCH_UP_LIMIT)))
        due = [reading for _, readings in runs for reading in readings]
        for meter, _ in runs:
            self._due.push(self._due_wall(meter), meter.meter_id)
        self._publish(runs, [encode_reading(r) for r in due])

    def _renew_horizon(self, sim_now: float) -> None:
        """Ask the writer to move the horizon ``HORIZON_LEAD_S`` of wall time ahead once less than
        ``HORIZON_RENEW_S`` is left (one small transaction; the loop goes on meanwhile)."""
        assert self._writer is not None
        if sim_now + HORIZON_RENEW_S * self.clock.speed > self._asked_horizon:
            self._asked_horizon = math.ceil(sim_now + HORIZON_LEAD_S * self.clock.speed)
            self._writer.submit_horizon(self._asked_horizon)

    def _checkpoint(self, meter_ids: Sequence[str], *, closed: bool) -> None:
        """Hand these meters' states and ``acked_upto`` to the writer (one transaction)."""
        assert self._writer is not None
        meters, links = self.meters, self.links
        self._writer.submit_checkpoints(
            [(meters[m].state, links[m].delivery.acked_upto()) for m in meter_ids], closed=closed
        )

    def _publish(self, runs: list[tuple[Meter, list[Reading]]], payloads: list[bytes]) -> None:
        """Send each meter's new readings (or hold them while it is not connected); count their lateness."""
        at = 0
        count = self._all_connected
        for meter, readings in runs:
            if not readings:
                continue
            link = self.links[meter.meter_id]
            live = link.connected
            self._send_live(link, readings[0].seq, payloads[at : at + len(readings)])
            at += len(readings)
            self._touched[meter.meter_id] = link
            if link.delivery.backlog:
                self._backlogged[meter.meter_id] = link
            if count:
                offset, hold, wall_at = self._offsets[meter.meter_id], self._hold_until, self.clock.wall_at
                # A warm-up's past readings, and those due while it was held, were never live: not counted.
                if live:
                    sent = self.wall()
                    for reading in readings:
                        due = wall_at(reading.ts + 1 + offset)
                        if due >= hold:
                            self.lateness.add(sent - due)
                else:
                    self.lateness.add_held(sum(wall_at(r.ts + 1 + offset) >= hold for r in readings))

    def _send_live(self, link: MeterLink, first: int, payloads: list[bytes]) -> None:
        """Publish a meter's new readings (seqs ``first``..), or hold them while it is not connected."""
        if not link.connected:
            link.delivery.held(first, first + len(payloads) - 1)
            if self._reproducer is not None:
                self._held.keep(link.meter_id, first, payloads)
        else:
            link.send(payloads, first)  # it holds what the connection refuses
