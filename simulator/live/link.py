"""One meter's link to the brokers: its MQTT connection (``config.mqtt.connection``), the node it is on and the
order it fails over in, its back-off, its command subscription and what it has published (the I/O shell's per-meter
state; the fleet's selector loop, ``simulator.live.publisher``, drives it).
"""

from __future__ import annotations

import logging
import random
import ssl
from collections import deque
from collections.abc import Callable, Sequence
from typing import Final

from config.errors import PayloadError
from config.mqtt.connection import MqttConnection
from config.mqtt.packet import CONNACK_REASONS, Message, Will
from config.settings import BrokerAddress
from config.topics import (
    COMMAND_SUBSCRIBE_QOS,
    READING_QOS,
    STATUS_QOS,
    batch_topic,
    reading_topic,
    replay_topic,
    status_topic,
)
from config.wire import OFFLINE, ONLINE, decode_replay, encode_batch, split_batches
from simulator.live.delivery import Delivery
from simulator.live.schedule import backoff_step

log = logging.getLogger(__name__)

KEEPALIVE_S: Final = 30
MAX_QUEUED: Final = 10_000  # QoS 1 messages a connection may hold; readings of a disconnected meter wait in the outbox
RECONNECT_MIN_S: Final = 0.5
RECONNECT_MAX_S: Final = 30.0
MAX_PENDING_REPLAYS: Final = 100


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
