"""The bridge's MQTT subscriber: on ``bridge.ingest.connection``, subscribed (again on every connect) to readings and
status; every message to ingest or to its route; a watchdog for a session the broker gave away.

Messages are turned into ``(topic, bytes)`` at the edge: a topic that is not UTF-8 goes to ingest as
``<undecodable topic>`` (rejected there as a bad topic), never as a protocol error. Handlers never raise into the
network thread: what a handler raises is logged and the next message is handled. Besides the meters' topics, exact
topics can be routed to a handler of their own (``add_route``: Home Assistant's status, which is not a meter message).
A chunk (one read, ``bridge.ingest.connection``) is taken whole: every message of it handled, then its PUBACKs in one
write, so that the broker never drops a message the bridge has not taken.

The bridge's own availability (``status_topic``, ``config.topics.bridge_status_topic``): its CONNECT carries a Last Will
``offline`` (retained, QoS 1), and after each CONNACK the subscriber publishes a retained ``online`` there; ``stop``
publishes ``offline`` and waits (up to ``STATUS_FLUSH_S``) for its PUBACK before the DISCONNECT, which suppresses the
Will.

A sharded bridge (``owned``: the meters this instance owns, ``config.shard``) subscribes to ``meters/<id>/+`` for each
owned meter instead of the wildcards (``FILTERS_PER_SUBSCRIBE`` filters a SUBSCRIBE), and drops (counts in
``foreign``) any meter message for a meter it does not own: a persistent session keeps the subscriptions of its
earlier runs, which may have owned other meters. A SUBACK shows the session alive; refused filters are logged.

Keepalive cannot see a session the broker gave away: amqtt, when another client took the bridge's client id, kept
answering pings on a connection that delivered nothing ever again. So a watchdog thread (a ``Ticker``) publishes a
QoS 1 probe to the bridge's own ``probe_topic`` every ``PROBE_PERIOD_S`` (and a PINGREQ if nothing else went out for
``KEEPALIVE_S``) and asks ``bridge.ingest.health.SessionWatch`` whether anything at all (readings, status, probe, a
SUBACK) was delivered lately; if not, it shuts the socket down, and the network thread sees the connection lost and
reconnects after its back-off.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Sequence
from typing import Final

from bridge.ingest.connection import BrokerConnection
from bridge.ingest.health import PROBE_PERIOD_S, SessionWatch
from bridge.ingest.link import KEEPALIVE_S, MAX_QUEUED
from bridge.ingest.messages import Ingest
from bridge.ingest.ticker import Ticker
from config.mqtt.packet import (
    CONNACK,
    PINGREQ_PACKET,
    SUBACK_FAILURE,
    Packet,
    ProtocolError,
    RawPublish,
    puback_packets,
    subscribe_many_packet,
    unsubscribe_packet,
)
from config.mqtt.session import Connack, Event, Suback
from config.settings import DEFAULT_BRIDGE_ID, BrokerAddress
from config.topics import (
    BATCH_SUBSCRIPTION,
    READING_QOS,
    READING_SUBSCRIPTION,
    STATUS_QOS,
    STATUS_SUBSCRIPTION,
    TOPIC_ROOT,
    probe_topic,
)
from config.wire import OFFLINE, ONLINE

log = logging.getLogger(__name__)

# A sharded bridge's per-meter filters go out in SUBSCRIBE packets of this many. Few: a NATS node makes each QoS 1
# filter a replicated JetStream consumer (about 4 a second on this 2-core machine), reads nothing more from the client
# meanwhile and answers a packet's SUBACK only when all of its filters are done; the SUBACKs are what shows the
# session's watchdog that the broker is working, not dead, while the probe waits behind the SUBSCRIBEs.
FILTERS_PER_SUBSCRIBE = 8
_LOG_EVERY = 1000
PROBE_QOS = 1
_STATUS_PREFIX, _STATUS_SUFFIX = STATUS_SUBSCRIPTION.split("+")  # meters/ and /status
_UNDECODABLE: Final = "<undecodable topic>"
STATUS_FLUSH_S: Final = 1.0  # on stop, how long the bridge waits for the broker to acknowledge its ``offline``


class Subscriber(BrokerConnection):
    """Connects to the broker in the background and feeds every message to ``ingest``."""

    def __init__(
        self,
        broker: BrokerAddress,
        ingest: Ingest,
        client_id: str = DEFAULT_BRIDGE_ID,
        owned: Sequence[str] | None = None,
        clock: Callable[[], float] = time.time,
        status_topic: str | None = None,
    ) -> None:
        super().__init__(broker, client_id, clock, status_topic)
        self.ingest = ingest
        # Written by the network thread, read by others (a float or None: one reference, no lock needed).
        self.last_message_s: float | None = None  # the last message of any kind delivered (the session is alive)
        self.last_status_s: float | None = None  # the last meter status message delivered
        self.last_suback_s: float | None = None  # the last SUBACK: a broker busy with subscriptions is not dead
        self.probes_received = 0
        self.probe_topic = probe_topic(client_id)
        self.watch = SessionWatch()
        self._watchdog = Ticker("mqtt-watchdog", PROBE_PERIOD_S, self._watch_pass)
        # None: every meter (wildcard subscriptions); else only these meters' topics (a shard of the fleet).
        self.owned: frozenset[str] | None = None if owned is None else frozenset(owned)
        self._owned_order = () if owned is None else tuple(dict.fromkeys(owned))
        self.foreign = 0  # meter messages dropped: not a meter this bridge owns
        # Guarded by ``_lock``, as the connection state.
        self._routes: dict[str, tuple[int, Callable[[bytes], None]]] = {self.probe_topic: (PROBE_QOS, self._probe)}

    # -- what the rest of the bridge asks -----------------------------------------------------------------------------

    def add_route(self, topic: str, handler: Callable[[bytes], None], qos: int = 1) -> None:
        """Subscribe to the exact ``topic`` too (now if connected, and on every connect); its payloads go to
        ``handler`` (on the network thread: it must be quick), never to ingest."""
        with self._lock:
            self._routes[topic] = (qos, handler)
            connected = self.connected
        if connected:
            self._subscribe([(topic, qos)])

    def alive(self) -> bool:
        """Connected, and not known dead: something was delivered (or a SUBACK came) within the watchdog's bound."""
        return self.connected and not self.watch.silent(self._clock(), self.connected_since_s, self._last_heard_s())

    def _last_heard_s(self) -> float | None:
        """When the session last showed it is alive: a message delivered, or a SUBACK."""
        heard = [t for t in (self.last_message_s, self.last_suback_s) if t is not None]
        return max(heard) if heard else None

    def last_message_age_s(self) -> float:
        """Wall seconds since the session delivered anything (since this subscriber started, if nothing yet)."""
        last = self.last_message_s
        return max(0.0, self._clock() - (self.started_s if last is None else last))

    def disconnected_s(self) -> float | None:
        """Wall seconds disconnected (since start if it never connected); None while connected."""
        since = self.disconnected_since_s
        return None if since is None else max(0.0, self._clock() - since)

    def start(self) -> None:
        """Start the network thread (it connects, and retries until a broker is there) and the watchdog."""
        super().start()
        self._watchdog.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the watchdog, say ``offline`` on the status topic, then disconnect (``BrokerConnection.stop``)."""
        self._watchdog.stop()
        if self.connected and self.status_topic is not None:
            self._say_offline(min(STATUS_FLUSH_S, timeout / 2))
        super().stop(timeout)

    def _say_offline(self, timeout_s: float) -> None:
        """Publish the retained ``offline`` (the DISCONNECT that follows suppresses the Will) and wait up to
        ``timeout_s`` for its PUBACK: the network thread is still reading."""
        assert self.status_topic is not None
        published = self._publish(self.status_topic, OFFLINE.encode(), STATUS_QOS, True)
        if published is None:
            log.warning("the bridge's offline was not sent: %d messages already wait for their PUBACK", MAX_QUEUED)
            return
        mid, sent = published
        if sent and not self._wait_acked(mid, timeout_s):
            log.warning("the broker did not acknowledge the bridge's offline within %.1f s", timeout_s)

    # -- the watchdog -------------------------------------------------------------------------------------------------

    def _watch_pass(self) -> None:
        """Probe the session, and force a reconnect if it is dead (the watchdog thread, every PROBE_PERIOD_S)."""
        if self.connected:
            self._send_probe()
            # Not the session's ``tick``: liveness is the watchdog's (``SessionWatch``), a PINGREQ only keeps a
            # broker from timing the bridge out; nothing went out meanwhile is the bridge's rule for it.
            if time.monotonic() - self._mqtt.last_out >= KEEPALIVE_S:
                self._send(PINGREQ_PACKET)
        if self.watch.check(self._clock(), self.connected_since_s, self._last_heard_s()):
            self._force_reconnect()

    def _send_probe(self) -> None:
        # Only while connected: probes held for a broker that is away would all go out at once on the next connect.
        self.publish(self.probe_topic, f"{self._clock():.3f}".encode(), PROBE_QOS, False)

    def _force_reconnect(self) -> None:
        now = self._clock()
        since = self.last_message_s or self.connected_since_s or now
        log.warning(
            "bridge's MQTT session to %s delivered nothing (not even its own probe) for %.0f s: forcing a reconnect"
            " (%d so far)",
            self.node.url(),
            now - since,
            self.watch.forced,
        )
        sock = self._sock
        if sock is None:  # dropped meanwhile: the network thread reconnects anyway
            return
        try:
            # Thread-safe: the network thread, waiting on this socket, reads EOF, counts the connection lost and
            # reconnects after its back-off.
            sock.shutdown(socket.SHUT_RDWR)
        except (OSError, ValueError) as exc:  # closed meanwhile: the same outcome
            log.info("forced reconnect: the socket was already gone (%s)", exc)

    # -- the messages (the network thread) ----------------------------------------------------------------------------

    def _take_chunk(self, data: bytes) -> bool:
        """Handle every whole packet so far (the session keeps a packet cut short for the next chunk), then
        acknowledge their messages in one write; False if the connection is lost."""
        try:
            acks = self._events(self._mqtt.receive(data, time.monotonic()))
        except ProtocolError as exc:
            log.warning("broker %s: %s; closing", self.node.url(), exc)
            self._lost(f"protocol error: {exc}")
            return False
        if acks and not self._send(acks):
            self._lost("send failed")
            return False
        return True

    def _handle(self, packets: Sequence[Packet]) -> bytes:
        """Handle a chunk's packets in order (already split); the PUBACKs of its QoS 1 messages."""
        return self._events(self._mqtt.handle(packets))

    def _events(self, events: list[Event]) -> bytes:
        """Handle a chunk's events in order; the PUBACKs of its QoS 1 messages, to send now that all are taken
        (a malformed packet, or a CONNACK after the first: ``ProtocolError``)."""
        mids: list[int] = []
        now = self._arrival() if events else 0.0
        for event in events:
            if type(event) is RawPublish:  # the per-message path: a type check, one unpack
                topic, payload, qos, mid, _ = event
                self._deliver(topic, payload, now)
                if qos:
                    mids.append(mid)
            elif type(event) is int:  # a PUBACK of a message the bridge published: whoever waits for it
                with self._lock:
                    self._acked.notify_all()
            elif isinstance(event, Suback):
                self._on_suback(event.codes)
            elif isinstance(event, Connack):
                raise ProtocolError(f"unexpected packet type 0x{CONNACK:02x}")
            elif isinstance(event, ProtocolError):
                raise event
        return puback_packets(mids) if mids else b""

    # -- the connection's events (the network thread; never raise) ----------------------------------------------------

    def _arrival(self) -> float:
        """The wall time of a chunk's arrival (one for all its messages); a failing clock costs a log line, never
        the chunk."""
        try:
            return self._clock()
        except Exception:
            log.exception("the subscriber's clock failed")
            return time.time()

    def _on_connack(self, code: int, session_present: bool) -> bool:
        """The broker's answer to CONNECT: subscribe (again) if accepted; True if accepted."""
        # One hold of the (reentrant) lock: the routes of the moment the connection counts as up (a route added
        # later subscribes itself, ``add_route``).
        with self._lock:
            resend = self._accepted(code)  # refused: logged, and the next attempt goes to the next node
            if resend is None:
                return False
            routes = [(topic, qos) for topic, (qos, _) in self._routes.items()]
        # Subscribing here restores the subscriptions after every reconnect (a kept session has them; no harm).
        if self.owned is None:
            self._subscribe(
                [
                    (READING_SUBSCRIPTION, READING_QOS),
                    (BATCH_SUBSCRIPTION, READING_QOS),
                    (STATUS_SUBSCRIPTION, STATUS_QOS),
                    *routes,
                ]
            )
        else:
            self._subscribe_owned(routes)
        self._send_probe()  # shows the new session alive at once (and /healthz ok) rather than a period later
        if resend:  # published and not acknowledged on the last connection (or while there was none), oldest first
            self._send(resend)
        if self.status_topic is not None:  # available again: retained, so whoever subscribes later reads it too
            self.publish(self.status_topic, ONLINE.encode(), STATUS_QOS, True)
        session = "its session kept" if session_present else "a new session"
        log.info("bridge connected to %s (%s)", self.node.url(), session)
        return True

    def _subscribe_owned(self, routes: list[tuple[str, int]]) -> None:
        # A session this client id had unsharded keeps its wildcards: drop them (harmless if there are none).
        self._send(unsubscribe_packet(self._new_mid(), [READING_SUBSCRIPTION, BATCH_SUBSCRIPTION, STATUS_SUBSCRIPTION]))
        # One filter per meter: ``+`` is one level, so reading, readings and status, never agg/<N>s or cmd/replay.
        qos = max(READING_QOS, STATUS_QOS)
        filters = [(f"{TOPIC_ROOT}/{meter}/+", qos) for meter in self._owned_order]
        if routes:
            self._subscribe(routes)
        for start in range(0, len(filters), FILTERS_PER_SUBSCRIBE):
            self._subscribe(filters[start : start + FILTERS_PER_SUBSCRIBE])
        if filters:
            log.info("bridge subscribed to the %d meters it owns", len(filters))
        else:
            log.warning("this bridge's shard owns none of FLEET_HOUSEHOLDS: it subscribes to no meter")

    def _on_suback(self, codes: bytes) -> None:
        self.last_suback_s = self._clock()
        refused = codes.count(SUBACK_FAILURE)
        if refused:
            log.warning("broker %s refused %d of %d filters of a SUBSCRIBE", self.node.url(), refused, len(codes))

    def _probe(self, payload: bytes) -> None:
        self.probes_received += 1  # only the network thread writes it

    def _deliver(self, topic_bytes: bytes, payload: bytes, now: float) -> None:
        """One message to its route or to ingest; never raises."""
        try:
            self.last_message_s = now  # whatever it is, the session delivered it: it is alive
            try:
                topic = topic_bytes.decode()
            except UnicodeDecodeError:
                topic = _UNDECODABLE
            if topic.endswith(_STATUS_SUFFIX) and topic.startswith(_STATUS_PREFIX):
                self.last_status_s = now
            route = self._routes.get(topic)
            if route is not None:  # not a meter message: neither ingested nor counted as rejected
                try:
                    route[1](payload)
                except Exception:
                    log.exception("error handling a message on %r", topic[:100])
                return
            if self.owned is not None and not self._is_owned(topic):
                self.foreign += 1  # only the network thread writes it
                if self.foreign == 1 or self.foreign % _LOG_EVERY == 0:
                    log.info("dropped message #%d for a meter this bridge does not own (%r)", self.foreign, topic[:100])
                return
            self.ingest.handle(topic, payload)
        except Exception:  # Ingest.handle does not raise; this is the last line of defence for the thread
            log.exception("error handling a message")

    def _is_owned(self, topic: str) -> bool:
        parts = topic.split("/", 2)
        return len(parts) != 3 or parts[0] != TOPIC_ROOT or self.owned is None or parts[1] in self.owned

    # -- writing ------------------------------------------------------------------------------------------------------

    def _subscribe(self, filters: list[tuple[str, int]]) -> None:
        self._send(subscribe_many_packet(self._new_mid(), filters))
