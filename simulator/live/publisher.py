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
``simulator.live.outbox``); a second's reading goes out alone on ``meters/<id>/reading``, several at once (catching up,
warm-up) as batches on ``meters/<id>/readings``. While a meter is disconnected its readings are held, not queued in
its connection; after the connection is back, and after a restart for whatever the broker never acknowledged, they are
reproduced from the outbox's checkpoints (``simulator.live.reproduce``) and sent as batches, oldest first, a few
messages in flight per meter (live readings go first). Replay requests from the bridge are answered the same way.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import selectors
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Final

from config.errors import PayloadError
from config.mqtt.connection import MqttConnection, resolve
from config.mqtt.packet import CONNACK_REASONS, Message, Will
from config.progress import Progress
from config.settings import BrokerAddress
from config.wire import (
    COMMAND_SUBSCRIBE_QOS,
    MAX_BATCH,
    OFFLINE,
    ONLINE,
    READING_QOS,
    STATUS_QOS,
    Reading,
    batch_topic,
    decode_replay,
    encode_batch,
    encode_reading,
    reading_topic,
    replay_topic,
    split_batches,
    status_topic,
)
from simulator.live.checkpoint import CHECKPOINT_S, CHECKPOINT_SLICES, HORIZON_LEAD_S, HORIZON_RENEW_S
from simulator.live.clock import SimClock
from simulator.live.delivery import Delivery, HeldPayloads
from simulator.live.outbox import Outbox, OutboxWriter
from simulator.live.reproduce import Reproducer
from simulator.live.schedule import (
    DEFAULT_CONNECT_RATE,
    ConnectPacer,
    DueQueue,
    LatenessHistogram,
    backoff_step,
    jitter_offset,
)
from simulator.meters.fleet import Meter

log = logging.getLogger(__name__)

KEEPALIVE_S: Final = 30
MAX_QUEUED: Final = 10_000  # QoS 1 messages a connection may hold; readings of a disconnected meter wait in the outbox
CATCH_UP_LIMIT: Final = 200
MAX_WAIT_S: Final = 0.25
RECONNECT_MIN_S: Final = 0.5
RECONNECT_MAX_S: Final = 30.0
STOP_FLUSH_S: Final = 3.0
REPLAY_PER_PASS: Final = 1000  # replayed readings per pass of the loop, all meters together
BACKLOG_PER_PASS: Final = 2000  # held readings sent per pass, all meters together (after live and replays)
MAX_PENDING_REPLAYS: Final = 100
STEP_S: Final = 0.025  # due readings are gathered at most this often (one outbox job each; the writer commits the
# jobs that queue up together), wall seconds, and at least twice per simulated second (an accelerated clock keeps
# sending each second's reading on its own)
SHOW_METERS: Final = 20  # meters named in the stop line
LATE_BOUND_S: Final = 0.2  # the stop summary counts readings published within this of their schedule


class MeterLink:
    """One meter's MQTT connection (``config.mqtt.connection``); callbacks only log and set flags, they never raise.

    With several brokers (``BrokerAddress.fallbacks``) the meter tries them in its own order
    (``BrokerAddress.order_for``: its first by the CRC-32 of its id, so a fleet spreads evenly), and moves on to the
    next one, round robin, whenever an attempt fails or its connection is lost, after the usual back-off."""

    def __init__(
        self, meter_id: str, broker: BrokerAddress, delivery: Delivery | None = None, keepalive_s: int = KEEPALIVE_S
    ) -> None:
        self.meter_id = meter_id
        self.keepalive_s = keepalive_s
        self.brokers = broker.order_for(meter_id)
        self.broker = self.brokers[0]  # the node it is on, or tries next
        self.delivery = delivery if delivery is not None else Delivery()
        self.published = 0
        self.dropped = 0
        self.connects = 0  # connections the broker accepted (the fleet's progress lines count them)
        self.next_attempt = 0.0
        self.backoff = RECONNECT_MIN_S
        self.quiet = False  # set at shutdown: a disconnect we asked for is not worth a warning
        self._node = 0  # index into ``brokers``
        self._online_at: BrokerAddress | None = None  # the node of the last accepted connection
        self._online = False  # the current connection was accepted (CONNACK 0)
        # The command subscription (replay requests) of the current connection: its SUBSCRIBE's id, and when it is
        # asked for again after the broker refused it (a NATS node refuses while JetStream elects a leader).
        self._command_mid: int | None = None
        self.resubscribe_at: float | None = None
        self._resubscribe_backoff = RECONNECT_MIN_S
        client = MqttConnection(
            f"meter-{meter_id}",
            will=Will(status_topic(meter_id), OFFLINE.encode(), qos=STATUS_QOS, retain=True),
            tls=_tls_context(broker),
            max_queued=MAX_QUEUED,
        )
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.on_suback = self._on_suback
        self.replays: deque[tuple[int, int]] = deque(maxlen=MAX_PENDING_REPLAYS)
        self.client = client
        self._login()
        self._reading_topic = reading_topic(meter_id)
        self._batch_topic = batch_topic(meter_id)
        # Set by the loop: told when the connection is lost, and when a replay request arrives.
        self.on_lost: Callable[[MeterLink], None] | None = None
        self.on_replay: Callable[[MeterLink], None] | None = None
        self.on_acked: Callable[[MeterLink], None] | None = None
        self.on_refused: Callable[[MeterLink], None] | None = None  # the command subscription was refused

    def _login(self) -> None:
        login = self.broker.login(self.meter_id)  # the meter's own user (config.credentials), or the URL's
        self.client.username = None if login is None else login[0]
        self.client.password = None if login is None else login[1]

    def next_broker(self) -> BrokerAddress:
        """Move on to the next broker of the meter's order (round robin; the same one if there is only one)."""
        self._node = (self._node + 1) % len(self.brokers)
        self.broker = self.brokers[self._node]
        self._login()
        return self.broker

    @property
    def connected(self) -> bool:
        """The broker accepted the connection and it is still open."""
        return self.client.connected

    def _on_connect(self, code: int) -> None:
        if code != 0:
            log.warning("meter %s: broker refused connection: %s", self.meter_id, CONNACK_REASONS.get(code, code))
            return
        self.backoff = RECONNECT_MIN_S
        self.client.publish(status_topic(self.meter_id), ONLINE.encode(), STATUS_QOS, retain=True)
        self._command_mid = self.client.subscribe(replay_topic(self.meter_id), COMMAND_SUBSCRIBE_QOS)  # each connect
        self.resubscribe_at = None
        # Once per connection (connects are paced and backed off); "again" when it came back to the same node.
        again = " again" if self._online_at == self.broker else ""
        self._online_at = self.broker
        self._online = True
        self.connects += 1
        # DEBUG: 10,000 meters coming online are a few progress lines at INFO (FleetLoop), not 10,000.
        log.debug("meter %s online%s at %s", self.meter_id, again, self.broker.url())

    def _on_disconnect(self, reason: str) -> None:
        left = self.broker.url()
        was_online, self._online = self._online, False
        then = f"; next {self.next_broker().url()}" if len(self.brokers) > 1 else ""
        if self.quiet:
            pass
        elif was_online:
            log.warning("meter %s disconnected from %s: %s%s", self.meter_id, left, reason, then)
        else:  # the attempt failed (refused, timed out, CONNACK refused) before the meter was ever online there
            log.warning("meter %s: cannot connect to %s: %s%s", self.meter_id, left, reason, then)
        if self.on_lost is not None:
            self.on_lost(self)

    def _on_suback(self, mid: int, granted: bool) -> None:
        if mid != self._command_mid:
            return
        if granted:
            self._resubscribe_backoff = RECONNECT_MIN_S
        elif self.on_refused is not None:
            self.on_refused(self)
        else:
            log.warning("meter %s: %s refused its command subscription", self.meter_id, self.broker.url())

    def resubscribe_later(self, now: float, u: float) -> float:
        """After a refused command subscription: ask again after a random share (``u`` in [0, 1)) of its own
        back-off, which then doubles (reset when the broker grants it). Without it the meter would never hear a
        replay request on this connection."""
        delay, self._resubscribe_backoff = backoff_step(self._resubscribe_backoff, u, RECONNECT_MAX_S)
        self.resubscribe_at = now + delay
        log.warning(
            "meter %s: %s refused its command subscription; asking again in %.1f s",
            self.meter_id,
            self.broker.url(),
            delay,
        )
        return delay

    def resubscribe(self, now: float) -> None:
        """Send the command subscription again if it was refused and its time has come (on this connection)."""
        if self.resubscribe_at is None or now < self.resubscribe_at or not self.connected:
            return
        self.resubscribe_at = None
        self._command_mid = self.client.subscribe(replay_topic(self.meter_id), COMMAND_SUBSCRIBE_QOS)

    def _on_publish(self, mid: int) -> None:
        self.delivery.acked(mid)
        if self.on_acked is not None:
            self.on_acked(self)

    def _on_message(self, message: Message) -> None:
        try:
            self.replays.append(decode_replay(message.payload))
            if self.on_replay is not None:
                self.on_replay(self)
        except PayloadError as exc:
            log.warning("meter %s: bad replay request: %s", self.meter_id, exc)
        except Exception:  # never let a callback kill the loop
            log.exception("meter %s: replay request", self.meter_id)

    def try_connect(self, now: float) -> bool:
        """Start the connection if it is closed and its back-off has passed (a non-blocking TCP connect: TLS, CONNECT
        and CONNACK come later, in the loop). False if it failed at once: ``next_attempt`` is set, and the next
        broker is the one to try."""
        if self.client.socket() is not None or now < self.next_attempt:
            return self.client.socket() is not None
        try:
            self.client.connect(self.broker.host, self.broker.port, self.keepalive_s)
        except OSError as exc:
            delay = self.retry_later(now, random.random())
            failed = self.broker.url()
            then = f" at {self.next_broker().url()}" if len(self.brokers) > 1 else ""
            log.warning("meter %s: cannot reach %s (%s); retry%s in %.1f s", self.meter_id, failed, exc, then, delay)
            return False
        return True

    def retry_later(self, now: float, u: float) -> float:
        """Schedule the next attempt after a random share (``u`` in [0, 1)) of the back-off, which then doubles."""
        delay, self.backoff = backoff_step(self.backoff, u, RECONNECT_MAX_S)
        self.next_attempt = now + delay
        return delay

    def send(self, payloads: Sequence[bytes], first: int | None) -> bool:
        """Publish consecutive readings (seq ``first`` onwards; None for a replay, which delivery does not track): one
        alone on the reading topic, more as batches. False if the connection refused a message (too many waiting); the
        caller holds the rest."""
        chunks = [payloads] if len(payloads) == 1 else split_batches(payloads)
        end = None if first is None else first + len(payloads) - 1
        for chunk in chunks:
            if len(chunk) == 1 and len(payloads) == 1:
                topic, payload = self._reading_topic, chunk[0]
            else:
                topic, payload = self._batch_topic, encode_batch(chunk)
            mid = self.client.publish(topic, payload, READING_QOS)
            # Not connected: the connection keeps the QoS 1 message and sends it after the next CONNACK.
            if mid is None:
                self._refused()
                if first is not None and end is not None:
                    self.delivery.held(first, end)  # this chunk and the rest wait in the outbox
                return False
            self.published += len(chunk)
            if first is not None:
                self.delivery.sent(mid, first, first + len(chunk) - 1)
                first += len(chunk)
        return True

    def _refused(self) -> None:
        self.dropped += 1
        if self.dropped == 1 or self.dropped % 1000 == 0:
            log.warning("meter %s: %d messages refused (%d waiting)", self.meter_id, self.dropped, MAX_QUEUED)


def _tls_context(broker: BrokerAddress) -> ssl.SSLContext | None:
    """Verify the broker against ``tls_ca`` (or the system's CAs) and its host name, as paho's ``tls_set`` does."""
    return ssl.create_default_context(cafile=broker.tls_ca) if broker.tls else None


def _delivery(outbox: Outbox | None, meter_id: str) -> Delivery:
    """A meter's delivery state: what its last run produced beyond what the broker acknowledged is sent again (the
    checkpoint this run started from: ``Outbox.begin_run``)."""
    start = None if outbox is None else outbox.latest(meter_id)
    if start is None:
        return Delivery()
    return Delivery(start.acked_upto, start.seq - 1 if start.seq > 0 else None)


class FleetLoop:
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

    def _replay_asked(self, link: MeterLink) -> None:
        self._replaying[link.meter_id] = link

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

    def _check_writer(self) -> None:
        """Stop the loop if the outbox could not be written (nothing may be published past what it holds)."""
        if self._writer is not None and self._writer.error is not None:
            raise RuntimeError("the outbox could not be written") from self._writer.error

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

    def _send_backlog(self, reproducer: Reproducer) -> None:
        """Send held readings (reproduced from the outbox), oldest first, at most ``BACKLOG_PER_PASS`` a pass."""
        budget = BACKLOG_PER_PASS
        for meter_id, link in list(self._backlogged.items()):
            while budget > 0 and link.connected:
                chunk = link.delivery.next_chunk(min(budget, MAX_BATCH))
                if chunk is None:
                    break
                self._touched[meter_id] = link
                first, last = chunk
                budget -= last - first + 1
                payloads = self._held.take(meter_id, first, last) or reproducer.payloads(meter_id, first, last)
                if len(payloads) != last - first + 1:  # older than the outbox's retention: what is left, untracked
                    log.warning("meter %s: seqs %d..%d partly gone from the outbox", link.meter_id, first, last)
                    if payloads:
                        link.send(payloads, None)
                    continue
                if not link.send(payloads, first):
                    break
            if not link.delivery.backlog:
                del self._backlogged[meter_id]
            if budget <= 0:
                break

    def _answer_replays(self, reproducer: Reproducer) -> None:
        """Publish again what the bridge asked for, at most ``REPLAY_PER_PASS`` seqs a pass (live goes first); never
        a seq the meter has not produced yet."""
        budget = REPLAY_PER_PASS
        for meter_id, link in list(self._replaying.items()):
            produced = self.meters[meter_id].state.seq - 1
            while link.replays and budget > 0:
                first, last = link.replays.popleft()
                last = min(last, produced)
                if last < first:
                    continue
                upto = min(last, first + budget - 1)
                payloads = reproducer.payloads(link.meter_id, first, upto)
                if payloads:
                    link.send(payloads, None)
                    self._touched[meter_id] = link
                budget -= upto - first + 1
                log.info("meter %s: replayed %d readings of seq %d..%d", link.meter_id, len(payloads), first, upto)
                if upto < last:  # the rest in a later pass
                    link.replays.appendleft((upto + 1, last))
            if not link.replays:
                del self._replaying[meter_id]
            if budget <= 0:
                break

    def _service(self, until: float) -> None:
        """Handle socket events until wall time ``until`` (PUBACKs, commands, the outbox writer's commits), publishing
        committed readings as they come; the rest of a pass (stepping, connects, backlog) waits for ``until``. A pass
        per event would cost more than the event at 10,000 meters."""
        while True:
            self._sync_registrations()
            timeout = max(0.0, until - self.wall())
            if not self._registered and self._writer is None:
                self.stop_event.wait(timeout)
                return
            ready = self._selector.select(timeout)
            for key, events in ready:
                if key.data is None:  # the outbox writer committed something (the horizon may have moved)
                    if self._writer is not None:
                        self._writer.drain()
                    self._check_writer()
                    continue
                link: MeterLink = key.data
                self._touched[link.meter_id] = link
                if events & selectors.EVENT_READ:
                    link.client.read()
                if events & selectors.EVENT_WRITE:
                    link.client.write()
            if not ready or self.wall() >= until or self.stop_event.is_set():
                return

    def _sync_registrations(self) -> None:
        """(Re-)register the sockets of the links that did something since the last call (only those can change).
        Stale sockets go first: a closed socket's descriptor number may already be another meter's new socket."""
        touched, self._touched = self._touched, {}
        for meter_id, link in touched.items():
            old = self._registered.get(meter_id)
            if old is not None and link.client.socket() is not old[0]:
                self._unregister(meter_id)
        for meter_id, link in touched.items():
            sock = link.client.socket()
            if sock is None:
                continue
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if link.client.want_write() else 0)
            old = self._registered.get(meter_id)
            if old is None:
                self._evict(sock)
                self._selector.register(sock, events, link)
                self._registered[meter_id] = (sock, events)
            elif old[1] != events:
                self._selector.modify(sock, events, link)
                self._registered[meter_id] = (sock, events)

    def _unregister(self, meter_id: str) -> None:
        sock, _ = self._registered.pop(meter_id)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self._selector.unregister(sock)

    def _evict(self, sock: socket.socket) -> None:
        """Drop whatever the selector still holds under ``sock``'s descriptor: the closed socket of a meter not
        touched since (registering on top of it raised KeyError and ended the whole fleet's loop)."""
        try:
            key = self._selector.get_key(sock)
        except KeyError:
            return
        stale = key.data
        if isinstance(stale, MeterLink) and self._registered.get(stale.meter_id, (None,))[0] is key.fileobj:
            self._unregister(stale.meter_id)
        else:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._selector.unregister(key.fileobj)

    def _shutdown(self) -> None:
        """Publish ``offline`` (retained) for every connected meter, flush, and disconnect."""
        mids = []
        for link in self.links.values():
            if link.connected:
                mid = link.client.publish(status_topic(link.meter_id), OFFLINE.encode(), STATUS_QOS, retain=True)
                if mid is not None:
                    mids.append((link, mid))
        deadline = self.wall() + STOP_FLUSH_S
        while mids and not all(link.client.is_acked(mid) for link, mid in mids) and self.wall() < deadline:
            self._service(self.wall() + 0.05)
        for link in self.links.values():
            link.quiet = True
            link.on_lost = None
            link.client.disconnect()
        total = sum(link.published for link in self.links.values())
        shown = list(self.links.items())[:SHOW_METERS]
        log.info(
            "stopped; published %d readings: %s%s",
            total,
            ", ".join(f"{meter_id}={link.published}" for meter_id, link in shown),
            ", ..." if len(self.links) > len(shown) else "",
        )
