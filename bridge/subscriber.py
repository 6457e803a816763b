"""The MQTT shell of the bridge: one paho client, subscribed (again on every connect) to readings and status.

paho's message is turned into ``(topic, bytes)`` at the edge; nothing past ``_on_message`` sees paho. Callbacks never
raise: an exception in a paho callback would kill its network thread. Besides the meters' topics, exact topics can be
routed to a handler of their own (``add_route``: Home Assistant's status, which is not a meter message), ``connection``
numbers the connections (a new number means a new session: retained messages may need publishing again), and
``publish`` is the bridge's one way out (the republisher uses it).

A sharded bridge (``owned``: the meters this instance owns, ``config.shard``) subscribes to ``meters/<id>/+`` for each
owned meter instead of the wildcards, and drops (counts in ``foreign``) any meter message for a meter it does not own:
a persistent session keeps the subscriptions of its earlier runs, which may have owned other meters.

paho's own keepalive cannot see a session the broker gave away: amqtt, when another client took the bridge's client id,
kept answering the bridge's pings on a connection that delivered nothing ever again. So a watchdog thread (a
``Ticker``) publishes a QoS 1 probe to the bridge's own ``probe_topic`` every ``PROBE_PERIOD_S`` and asks
``bridge.health.SessionWatch`` whether anything at all (readings, status, probe) was delivered lately; if not, it
shuts the socket down, and paho's network thread sees the connection lost and reconnects with its back-off.

Several brokers (``BrokerAddress.fallbacks``): the bridge starts on the first of the list and moves on to the next,
round robin, whenever an attempt fails (``on_connect_fail``: TCP/TLS), the broker refuses it (CONNACK) or the
connection is lost (``on_disconnect``, the watchdog's forced reconnect included), after paho's own back-off. paho 2.x
reconnects by itself (``loop_start``) to ``client.host``/``client.port``, and its public setters refuse a change
unless the connection is closed, which it never is between paho's own attempts (state CONNECTING or
CONNECTION_LOST). So the node is chosen in ``on_pre_connect``, which paho calls on its network thread right before
each attempt opens its socket (``Client.reconnect``): it sets paho's ``_host``/``_port`` (what ``reconnect`` reads;
``connect_async`` does the same through the setters) and the node's login. No other thread touches them.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from bridge.health import PROBE_PERIOD_S, SessionWatch
from bridge.ingest import Ingest
from bridge.ticker import Ticker
from config.credentials import BRIDGE_USER
from config.settings import DEFAULT_BRIDGE_ID, BrokerAddress
from config.wire import (
    BATCH_SUBSCRIPTION,
    READING_QOS,
    READING_SUBSCRIPTION,
    STATUS_QOS,
    STATUS_SUBSCRIPTION,
    TOPIC_ROOT,
    probe_topic,
)

log = logging.getLogger(__name__)

KEEPALIVE_S = 30
# A sharded bridge's per-meter filters go out in SUBSCRIBE packets of this many. Few: a NATS node makes each QoS 1
# filter a replicated JetStream consumer (about 4 a second on this 2-core machine), reads nothing more from the client
# meanwhile and answers a packet's SUBACK only when all of its filters are done; the SUBACKs are what shows the
# session's watchdog that the broker is working, not dead, while the probe waits behind the SUBSCRIBEs.
FILTERS_PER_SUBSCRIBE = 8
_LOG_EVERY = 1000
PROBE_QOS = 1
_STATUS_PREFIX, _STATUS_SUFFIX = STATUS_SUBSCRIPTION.split("+")  # meters/ and /status


class Subscriber:
    """Connects to the broker in the background and feeds every message to ``ingest``."""

    def __init__(
        self,
        broker: BrokerAddress,
        ingest: Ingest,
        client_id: str = DEFAULT_BRIDGE_ID,
        owned: Sequence[str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.broker = broker  # the list; ``node`` is the broker of the current (or next) connection
        self.brokers = broker.addresses()
        self.node = self.brokers[0]
        self._move_on = False  # the last attempt failed or the connection was lost: the next attempt uses the next node
        self.ingest = ingest
        self.connected = False
        self._clock = clock  # wall seconds, as bridge.ingest's arrivals
        # Written by paho's thread, read by others (a float or None: one reference, no lock needed).
        self.started_s = clock()  # when this subscriber was made (or started): the ages' origin before any message
        self.last_message_s: float | None = None  # the last message of any kind delivered (the session is alive)
        self.last_status_s: float | None = None  # the last meter status message delivered
        self.last_suback_s: float | None = None  # the last SUBACK: a broker busy with subscriptions is not dead
        self.connected_since_s: float | None = None  # None while disconnected
        self.disconnected_since_s: float | None = self.started_s  # None while connected
        self.probes_received = 0
        self.probe_topic = probe_topic(client_id)
        self.watch = SessionWatch()
        self._watchdog = Ticker("mqtt-watchdog", PROBE_PERIOD_S, self._watch_pass)
        # None: every meter (wildcard subscriptions); else only these meters' topics (a shard of the fleet).
        self.owned: frozenset[str] | None = None if owned is None else frozenset(owned)
        self._owned_order = () if owned is None else tuple(dict.fromkeys(owned))
        self.foreign = 0  # meter messages dropped: not a meter this bridge owns
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            # A persistent session (fixed id, clean_session false): while the bridge is away the broker queues its
            # QoS 1 messages (Mosquitto up to max_queued_messages; amqtt only for authenticated sessions). The first
            # line of defence; seq gap repair (bridge.repair) is the guarantee.
            client_id=client_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
        )
        login = self.node.login(BRIDGE_USER)  # the bridge's user (config.credentials), or the URL's
        if login is not None:
            client.username_pw_set(*login)
        if broker.tls:
            client.tls_set(ca_certs=broker.tls_ca)
        client.reconnect_delay_set(min_delay=1, max_delay=10)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        client.on_pre_connect = self._on_pre_connect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        self.client = client
        self._lock = threading.Lock()
        self._routes: dict[str, tuple[int, Callable[[bytes], None]]] = {self.probe_topic: (PROBE_QOS, self._probe)}
        self._connections = 0

    def add_route(self, topic: str, handler: Callable[[bytes], None], qos: int = 1) -> None:
        """Subscribe to the exact ``topic`` too (now if connected, and on every connect); its payloads go to
        ``handler`` (on paho's thread: it must be quick), never to ingest."""
        with self._lock:
            self._routes[topic] = (qos, handler)
            connected = self.connected
        if connected:
            self.client.subscribe(topic, qos)

    def connection(self) -> int | None:
        """Number of the current connection (1 for the first, then one more per reconnect); None while disconnected."""
        with self._lock:
            return self._connections if self.connected else None

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> bool:
        """Publish (thread-safe); True if paho sent it, or queued it until the next connection (QoS > 0)."""
        rc = self.client.publish(topic, payload, qos=qos, retain=retain).rc
        return rc == mqtt.MQTT_ERR_SUCCESS or (qos > 0 and rc == mqtt.MQTT_ERR_NO_CONN)

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
        """Wall seconds paho has said disconnected (since start if it never connected); None while connected."""
        since = self.disconnected_since_s
        return None if since is None else max(0.0, self._clock() - since)

    def start(self) -> None:
        """Connect asynchronously and start paho's network thread (it retries until the broker is there), and the
        watchdog."""
        self.started_s = self.disconnected_since_s = self._clock()
        self.client.connect_async(self.node.host, self.node.port, KEEPALIVE_S)
        self.client.loop_start()
        self._watchdog.start()

    def stop(self) -> None:
        """Stop the watchdog, disconnect and stop the network thread."""
        self._watchdog.stop()
        self.connected = False  # a disconnect we asked for is not worth a warning
        self.client.disconnect()
        self.client.loop_stop()

    def _watch_pass(self) -> None:
        """Probe the session, and force a reconnect if it is dead (the watchdog thread, every PROBE_PERIOD_S)."""
        if self.connected:
            self._send_probe()
        if self.watch.check(self._clock(), self.connected_since_s, self._last_heard_s()):
            self._force_reconnect()

    def _send_probe(self) -> None:
        # Only while connected: paho would queue QoS 1 probes for a broker that is away, and send them all at once.
        self.client.publish(self.probe_topic, f"{self._clock():.3f}".encode(), qos=PROBE_QOS, retain=False)

    def _force_reconnect(self) -> None:
        now = self._clock()
        since = self.last_message_s or self.connected_since_s or now
        silent_s = now - since
        log.warning(
            "bridge's MQTT session to %s delivered nothing (not even its own probe) for %.0f s: forcing a reconnect"
            " (%d so far)",
            self.node.url(),
            silent_s,
            self.watch.forced,
        )
        sock = self.client.socket()
        if not isinstance(sock, socket.socket):  # None: paho dropped it meanwhile, and its loop reconnects anyway
            return
        try:
            # Thread-safe: paho's network thread, blocked in select() on this socket, wakes up, reads EOF, closes the
            # socket, calls on_disconnect and reconnects with its back-off (reconnect() from this thread would race
            # it for the socket).
            sock.shutdown(socket.SHUT_RDWR)
        except (OSError, ValueError) as exc:  # closed meanwhile: the same outcome
            log.info("forced reconnect: the socket was already gone (%s)", exc)

    def node_url(self) -> str:
        """The URL (no password) of the broker the bridge is on, or tries next."""
        return self.node.url()

    def _on_pre_connect(self, client: mqtt.Client, userdata: object) -> None:
        """On paho's thread, right before each attempt opens its socket: the next node if the last one failed."""
        try:
            if not self._move_on or len(self.brokers) < 2:
                return
            self._move_on = False
            left = self.node
            self.node = self.brokers[(self.brokers.index(left) + 1) % len(self.brokers)]
            # paho's public host/port setters refuse while it reconnects by itself; reconnect() reads these.
            client._host, client._port = self.node.host, self.node.port
            login = self.node.login(BRIDGE_USER)
            client.username_pw_set(*(login if login is not None else (None, None)))
            log.info("bridge moves on from %s to %s", left.url(), self.node.url())
        except Exception:
            log.exception("error in on_pre_connect")

    def _on_connect_fail(self, client: mqtt.Client, userdata: object) -> None:
        try:
            self._move_on = True  # TCP or TLS failed
            log.warning("bridge cannot reach %s", self.node.url())
        except Exception:
            log.exception("error in on_connect_fail")

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        try:
            self.last_suback_s = self._clock()
            refused = sum(1 for code in reason_codes if code.is_failure)
            if refused:
                log.warning(
                    "broker %s refused %d of %d filters of a SUBSCRIBE", self.node.url(), refused, len(reason_codes)
                )
        except Exception:
            log.exception("error in on_subscribe")

    def _probe(self, payload: bytes) -> None:
        self.probes_received += 1  # only paho's thread writes it

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        try:
            if reason.is_failure:
                self._move_on = True
                log.warning("broker %s refused the bridge: %s", self.node.url(), reason)
                return
            with self._lock:
                self.connected = True
                self._connections += 1
                routes = [(topic, qos) for topic, (qos, _) in self._routes.items()]
            self.connected_since_s = self._clock()
            self.disconnected_since_s = None
            # Subscribing here restores the subscriptions after every reconnect.
            if self.owned is None:
                client.subscribe(
                    [
                        (READING_SUBSCRIPTION, READING_QOS),
                        (BATCH_SUBSCRIPTION, READING_QOS),
                        (STATUS_SUBSCRIPTION, STATUS_QOS),
                        *routes,
                    ]
                )
            else:
                self._subscribe_owned(client, routes)
            self._send_probe()  # shows the new session alive at once (and /healthz ok) rather than a period later
            session = "its session kept" if flags.session_present else "a new session"
            log.info("bridge connected to %s (%s)", self.node.url(), session)
        except Exception:
            log.exception("error in on_connect")

    def _subscribe_owned(self, client: mqtt.Client, routes: list[tuple[str, int]]) -> None:
        # A session this client id had unsharded keeps its wildcards: drop them (harmless if there are none).
        client.unsubscribe([READING_SUBSCRIPTION, BATCH_SUBSCRIPTION, STATUS_SUBSCRIPTION])
        # One filter per meter: ``+`` is one level, so reading, readings and status, never agg/<N>s or cmd/replay.
        qos = max(READING_QOS, STATUS_QOS)
        filters = [(f"{TOPIC_ROOT}/{meter}/+", qos) for meter in self._owned_order]
        if routes:
            client.subscribe(routes)
        for start in range(0, len(filters), FILTERS_PER_SUBSCRIBE):
            client.subscribe(filters[start : start + FILTERS_PER_SUBSCRIBE])
        if filters:
            log.info("bridge subscribed to the %d meters it owns", len(filters))
        else:
            log.warning("this bridge's shard owns none of FLEET_HOUSEHOLDS: it subscribes to no meter")

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        try:
            if self.connected:
                log.warning("bridge disconnected from %s: %s", self.node.url(), reason)
            self._move_on = True  # lost, or closed before CONNACK (after ``stop`` it does not matter)
            self.connected = False
            self.connected_since_s = None
            if self.disconnected_since_s is None:
                self.disconnected_since_s = self._clock()
        except Exception:
            log.exception("error in on_disconnect")

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        try:
            self._deliver(message)
        except Exception:  # the last line of defence for paho's thread
            log.exception("error handling a message")

    def _deliver(self, message: mqtt.MQTTMessage) -> None:
        now = self._clock()
        self.last_message_s = now  # whatever it is, the session delivered it: it is alive
        try:
            topic = message.topic
        except UnicodeDecodeError:
            topic = "<undecodable topic>"
        if topic.endswith(_STATUS_SUFFIX) and topic.startswith(_STATUS_PREFIX):
            self.last_status_s = now
        route = self._routes.get(topic)
        if route is not None:  # not a meter message: neither ingested nor counted as rejected
            try:
                route[1](bytes(message.payload))
            except Exception:
                log.exception("error handling a message on %r", topic[:100])
            return
        if self.owned is not None and not self._is_owned(topic):
            self.foreign += 1  # only paho's thread writes it
            if self.foreign == 1 or self.foreign % _LOG_EVERY == 0:
                log.info("dropped message #%d for a meter this bridge does not own (%r)", self.foreign, topic[:100])
            return
        try:
            self.ingest.handle(topic, bytes(message.payload))
        except Exception:  # Ingest.handle does not raise; this is the last line of defence for the thread
            log.exception("error handling a message")

    def _is_owned(self, topic: str) -> bool:
        parts = topic.split("/", 2)
        return len(parts) != 3 or parts[0] != TOPIC_ROOT or self.owned is None or parts[1] in self.owned
