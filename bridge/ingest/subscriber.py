"""The MQTT shell of the bridge: one connection (``config.mqtt``'s packets and session), subscribed (again on every
connect) to readings and status, in one network thread.

Why not paho: paho took 5 ``recv`` and 2 ``send`` per message received (the packet a byte at a time, its wake-up
socket), most of the CPU of a single-reading message (docs/performance.md "Ingest"). Here the network thread reads what
the socket holds (up to ``READ_BYTES``), takes every whole packet of it, hands each message to its handler, and then
acknowledges every QoS 1 message of that chunk in ONE write: a PUBACK goes out only after ``Ingest.handle`` has taken
the message into history (and the store's queue), as paho's PUBACK after ``on_message`` did, so the broker never drops
a message the bridge has not taken (at least once; duplicates are dropped by (meter, second)). Under gunicorn's gevent
worker this thread is a greenlet: it waits in ``recv`` itself, so it runs as soon as its socket is readable, ahead of
the SSE greenlets queued to run (readings close windows: they must not wait behind a storm of connects), and after a
chunk that filled its buffer (a backlog) it yields (``time.sleep(0)``), so that a long backlog does not starve them.

The session's rules (message ids, what is in flight, resend with DUP after the CONNACK) are ``config.mqtt.session``'s,
shared with the meters' client; this module is the shell: the socket, the threads, the lock, the subscriptions.

Messages are turned into ``(topic, bytes)`` at the edge: a topic that is not UTF-8 goes to ingest as
``<undecodable topic>`` (rejected there as a bad topic), never as a protocol error. Handlers never raise into the
network thread: what a handler raises is logged and the next message is handled. Besides the meters' topics, exact
topics can be routed to a handler of their own (``add_route``: Home Assistant's status, which is not a meter message),
``connection`` numbers the connections (a new number means a new session: retained messages may need publishing
again), and ``publish`` is the bridge's one way out (the republisher and the gap repairer use it; thread-safe: one
lock orders every write on the socket; on TLS, reads happen only when the selector says data is there, under that
lock, so a TLS socket never reads and writes at once).

A sharded bridge (``owned``: the meters this instance owns, ``config.shard``) subscribes to ``meters/<id>/+`` for each
owned meter instead of the wildcards (``FILTERS_PER_SUBSCRIBE`` filters a SUBSCRIBE), and drops (counts in
``foreign``) any meter message for a meter it does not own: a persistent session keeps the subscriptions of its
earlier runs, which may have owned other meters. A SUBACK shows the session alive; refused filters are logged.

A persistent session (fixed client id, clean session off): while the bridge is away the broker queues its QoS 1
messages (Mosquitto up to max_queued_messages; amqtt only for authenticated sessions). The first line of defence; seq
gap repair (bridge.ingest.repair) is the guarantee. Each connect logs whether the broker kept the session.

Keepalive cannot see a session the broker gave away: amqtt, when another client took the bridge's client id, kept
answering pings on a connection that delivered nothing ever again. So a watchdog thread (a ``Ticker``) publishes a
QoS 1 probe to the bridge's own ``probe_topic`` every ``PROBE_PERIOD_S`` (and a PINGREQ if nothing else went out for
``KEEPALIVE_S``) and asks ``bridge.ingest.health.SessionWatch`` whether anything at all (readings, status, probe, a
SUBACK) was delivered lately; if not, it shuts the socket down, and the network thread sees the connection lost and
reconnects after its back-off.

The bridge's own availability (``status_topic``, ``config.wire.bridge_status_topic``): its CONNECT carries a Last Will
``offline`` (retained, QoS 1), and after each CONNACK it publishes a retained ``online`` there; ``stop`` publishes
``offline`` and waits (up to ``STATUS_FLUSH_S``) for its PUBACK before the DISCONNECT, which suppresses the Will.

Several brokers (``BrokerAddress.fallbacks``): the bridge starts on the first of the list and moves on to the next,
round robin, whenever an attempt fails (TCP/TLS), the broker refuses it (CONNACK) or the connection is lost (the
watchdog's forced reconnect included), after the back-off (1 s, doubling up to 10 s while attempts fail, as paho's
``reconnect_delay_set(1, 10)`` was). Each node is tried with its own login.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from typing import Final

from bridge.ingest.health import PROBE_PERIOD_S, SessionWatch
from bridge.ingest.messages import Ingest
from bridge.ingest.ticker import Ticker
from config.credentials import BRIDGE_USER
from config.mqtt.packet import (
    CONNACK,
    CONNACK_REASONS,
    DISCONNECT_PACKET,
    PINGREQ_PACKET,
    SUBACK_FAILURE,
    Packet,
    ProtocolError,
    RawPublish,
    Will,
    connack_code,
    connack_session_present,
    puback_packets,
    string,
    subscribe_many_packet,
    unsubscribe_packet,
)
from config.mqtt.session import Connack, Event, Session, Suback
from config.settings import DEFAULT_BRIDGE_ID, BrokerAddress
from config.wire import (
    BATCH_SUBSCRIPTION,
    OFFLINE,
    ONLINE,
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
_UNDECODABLE: Final = "<undecodable topic>"

READ_BYTES: Final = 65_536  # one read: about 250 single-reading messages; a full one (a backlog) and the thread yields
CONNECT_TIMEOUT_S: Final = 10.0  # TCP, TLS and the CONNACK, each
IO_TIMEOUT_S: Final = 10.0  # a write the broker does not take for this long loses the connection
WAIT_S: Final = 1.0  # on TLS the network thread looks at ``stop`` this often (plain TCP: ``stop`` wakes its ``recv``)
MIN_BACKOFF_S: Final = 1.0
MAX_BACKOFF_S: Final = 10.0
MAX_QUEUED: Final = 10_000  # QoS 1 messages published and not yet acknowledged; beyond it ``publish`` refuses
STATUS_FLUSH_S: Final = 1.0  # on stop, how long the bridge waits for the broker to acknowledge its ``offline``


class Subscriber:
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
        self.broker = broker  # the list; ``node`` is the broker of the current (or next) connection
        self.brokers = broker.addresses()
        self.node = self.brokers[0]
        self._move_on = False  # the last attempt failed or the connection was lost: the next attempt uses the next node
        self._tried = False  # an attempt was made (the first one goes to the first node)
        self.ingest = ingest
        self.client_id = client_id
        self.status_topic = status_topic  # the bridge's availability (Last Will, online, offline); None: none
        # Message ids, what is in flight (QoS 1 until its PUBACK, sent again after each CONNACK), the CONNACK's
        # state (``connected``), when the last write went out (monotonic); guarded by ``_lock`` where other threads
        # publish. Its input buffer is the network thread's alone, and so are the PUBACKs' pops from what is in
        # flight, made without the lock (one dict pop is atomic; only that thread iterates it, in ``connack``), so a
        # chunk takes the lock only to notify whoever waits for a PUBACK, as before.
        self._mqtt = Session(KEEPALIVE_S, MAX_QUEUED)
        self._clock = clock  # wall seconds, as bridge.ingest.messages's arrivals
        # Written by the network thread, read by others (a float or None: one reference, no lock needed).
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
        self._tls = ssl.create_default_context(cafile=broker.tls_ca) if broker.tls else None  # as paho's tls_set
        # Routes, connection state, message ids, what is in flight. An RLock: a Condition over a plain Lock makes
        # gevent's lock yield to every runnable greenlet on each notify (bridge.ingest.store), and the network thread
        # notifies on every PUBACK.
        self._lock = threading.RLock()
        self._acked = threading.Condition(self._lock)  # notified on every PUBACK
        self._io = threading.Lock()  # every read and write of the socket
        self._routes: dict[str, tuple[int, Callable[[bytes], None]]] = {self.probe_topic: (PROBE_QOS, self._probe)}
        self._connections = 0
        self._sock: socket.socket | None = None
        self._in = bytearray()  # up to the CONNACK (read here); after it, the session takes the bytes
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- what the rest of the bridge asks -------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """The broker accepted the current connection (CONNACK) and it was not lost or stopped since."""
        return self._mqtt.connected

    @connected.setter
    def connected(self, value: bool) -> None:
        self._mqtt.connected = value

    def add_route(self, topic: str, handler: Callable[[bytes], None], qos: int = 1) -> None:
        """Subscribe to the exact ``topic`` too (now if connected, and on every connect); its payloads go to
        ``handler`` (on the network thread: it must be quick), never to ingest."""
        with self._lock:
            self._routes[topic] = (qos, handler)
            connected = self.connected
        if connected:
            self._subscribe([(topic, qos)])

    def connection(self) -> int | None:
        """Number of the current connection (1 for the first, then one more per reconnect); None while disconnected."""
        with self._lock:
            return self._connections if self.connected else None

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> bool:
        """Publish (thread-safe); True if sent, or (QoS 1) held until its PUBACK and sent again after a reconnect.
        False for QoS 0 while disconnected, or QoS 1 with ``MAX_QUEUED`` messages already waiting."""
        with self._lock:
            packet = self._mqtt.publish(string(topic), payload, qos, retain)
        if packet is None:  # MAX_QUEUED in flight
            return False
        sent = bool(packet) and self._send(packet)  # b"": not connected (QoS 1 held for the next CONNACK)
        return sent or qos > 0

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

    def node_url(self) -> str:
        """The URL (no password) of the broker the bridge is on, or tries next."""
        return self.node.url()

    def start(self) -> None:
        """Start the network thread (it connects, and retries until a broker is there) and the watchdog."""
        self.started_s = self.disconnected_since_s = self._clock()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="mqtt-subscriber", daemon=True)
            self._thread.start()
        self._watchdog.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the watchdog, say ``offline`` on the status topic, disconnect (DISCONNECT: the broker keeps the
        session) and end the network thread (waited for up to ``timeout``: within gunicorn's graceful timeout, so that
        the store still closes after it)."""
        self._watchdog.stop()
        if self.connected and self.status_topic is not None:
            self._say_offline(min(STATUS_FLUSH_S, timeout / 2))
        self._stop.set()
        was_connected, self.connected = self.connected, False  # a disconnect we asked for is not worth a warning
        sock = self._sock
        if sock is not None:
            if was_connected:
                self._write(sock, DISCONNECT_PACKET)
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes the network thread at once
        if self._thread is not None:
            self._thread.join(timeout)

    def _say_offline(self, timeout_s: float) -> None:
        """Publish the retained ``offline`` (the DISCONNECT that follows suppresses the Will) and wait up to
        ``timeout_s`` for its PUBACK: the network thread is still reading."""
        assert self.status_topic is not None
        session = self._mqtt
        with self._lock:
            packet = session.publish(string(self.status_topic), OFFLINE.encode(), STATUS_QOS, True)
            mid = session.mid
        if packet is None:
            log.warning("the bridge's offline was not sent: %d messages already wait for their PUBACK", MAX_QUEUED)
            return
        if packet and self._send(packet):
            with self._acked:
                acked = self._acked.wait_for(lambda: session.acknowledged(mid), timeout_s)
            if not acked:
                log.warning("the broker did not acknowledge the bridge's offline within %.1f s", timeout_s)

    # -- the watchdog -----------------------------------------------------------------------------------------------

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

    # -- the network thread ---------------------------------------------------------------------------------------

    def _run(self) -> None:
        delay_s = MIN_BACKOFF_S
        while not self._stop.is_set():
            try:
                accepted = self._session()
            except Exception:  # a bug: logged, and the thread goes on reconnecting
                log.exception("error in the MQTT network thread")
                self._lost("internal error")
                accepted = False
            if self._stop.is_set():
                break
            if accepted:
                delay_s = MIN_BACKOFF_S  # a lost connection: the first attempt after 1 s
            self._stop.wait(delay_s)
            if not accepted:
                delay_s = min(delay_s * 2, MAX_BACKOFF_S)
        self._close()

    def _session(self) -> bool:
        """One connection, from the attempt to its loss; True if the broker accepted it."""
        node = self._choose_node()
        try:
            sock = socket.create_connection((node.host, node.port), timeout=CONNECT_TIMEOUT_S)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls is not None:
                sock = self._tls.wrap_socket(sock, server_hostname=node.host)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            self._connect_failed(exc)
            return False
        sock.settimeout(IO_TIMEOUT_S)
        self._in.clear()
        self._sock = sock
        login = node.login(BRIDGE_USER)  # the bridge's user (config.credentials), or the URL's
        user, password = login if login is not None else (None, None)
        will = None if self.status_topic is None else Will(self.status_topic, OFFLINE.encode(), STATUS_QOS, True)
        self._write(
            sock,
            self._mqtt.connect(
                time.monotonic(), self.client_id, clean_session=False, will=will, username=user, password=password
            ),
        )
        connack = self._read_connack(sock)
        if connack is None:
            self._lost("no CONNACK")
            return False
        if not self._on_connack(connack_code(connack), connack_session_present(connack)):
            self._close()
            return False
        self._read_loop(sock)
        return True

    def _read_connack(self, sock: socket.socket) -> Packet | None:
        """The CONNACK (whatever came after it stays in ``_in`` for the read loop), or None if the connection ended
        first or sent something else."""
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        while len(self._in) < 4 and time.monotonic() < deadline and not self._stop.is_set():
            try:
                data = sock.recv(READ_BYTES)
            except TimeoutError:
                continue
            except OSError:
                return None
            if not data:
                return None
            self._in += data
        if len(self._in) < 4:
            return None
        if self._in[0] != CONNACK or self._in[1] != 2:
            log.warning("broker %s sent 0x%02x where a CONNACK was due", self.node.url(), self._in[0])
            return None
        connack = Packet(CONNACK, bytes(self._in[2:4]))
        del self._in[:4]
        return connack

    def _read_loop(self, sock: socket.socket) -> None:
        """Read, handle, acknowledge, yield; until the connection is lost or ``stop``."""
        with_connack = bytes(self._in)
        self._in.clear()
        if not self._take_chunk(with_connack):  # what came with the CONNACK
            return
        tls = isinstance(sock, ssl.SSLSocket)
        with selectors.DefaultSelector() as selector:
            selector.register(sock, selectors.EVENT_READ)
            while not self._stop.is_set():
                try:
                    data = self._read(sock, selector, tls)
                except TimeoutError:
                    continue
                except OSError as exc:
                    self._lost(f"receive failed: {exc}")
                    return
                if data is None:
                    continue
                if not data:
                    self._lost("connection closed")
                    return
                if not self._take_chunk(data):
                    return
                if tls or len(data) == READ_BYTES:  # a backlog (or TLS, read under the selector): see _read
                    time.sleep(0)  # under gevent: let the SSE greenlets have their turn between chunks

    def _read(self, sock: socket.socket, selector: selectors.BaseSelector, tls: bool) -> bytes | None:
        """The next bytes from the broker (None: none within ``WAIT_S``, TLS only).

        Plain TCP: a read may run beside a write, so the thread waits in ``recv`` itself (``stop`` shuts the socket
        down to wake it). Under gevent a greenlet waiting on its socket is switched to as soon as the socket is
        readable, ahead of the greenlets queued to run; a wake-up through the selector (an event) waits behind all of
        them, and during a storm of SSE connects that was seconds: readings, and so the windows they close, were late
        (docs/performance.md, issue #13). A read that filled the buffer means a backlog: the loop yields after it.
        TLS: a read must never run beside a write, so it waits in the selector and reads under the I/O lock (and
        the TLS layer may hold decrypted bytes the selector cannot see).
        """
        if not tls:
            return sock.recv(READ_BYTES)
        if not sock.pending() and not selector.select(WAIT_S):  # type: ignore[attr-defined]
            return None
        with self._io:
            return sock.recv(READ_BYTES)

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

    # -- the connection's events (the network thread; never raise) ------------------------------------------------

    def _arrival(self) -> float:
        """The wall time of a chunk's arrival (one for all its messages); a failing clock costs a log line, never
        the chunk."""
        try:
            return self._clock()
        except Exception:
            log.exception("the subscriber's clock failed")
            return time.time()

    def _choose_node(self) -> BrokerAddress:
        """Right before each attempt: the next node if the last attempt failed or the connection was lost."""
        if self._move_on and len(self.brokers) > 1:
            left = self.node
            self.node = self.brokers[(self.brokers.index(left) + 1) % len(self.brokers)]
            log.info("bridge moves on from %s to %s", left.url(), self.node.url())
        self._move_on = False
        return self.node

    def _connect_failed(self, exc: BaseException) -> None:
        self._move_on = True  # TCP or TLS failed
        log.warning("bridge cannot reach %s (%s)", self.node.url(), exc)

    def _on_connack(self, code: int, session_present: bool) -> bool:
        """The broker's answer to CONNECT: subscribe (again) if accepted; True if accepted."""
        if code != 0:
            self._move_on = True
            log.warning("broker %s refused the bridge: %s", self.node.url(), CONNACK_REASONS.get(code, code))
            return False
        with self._lock:
            resend = self._mqtt.connack(code)  # connected; what is in flight, DUP set, oldest first
            self._connections += 1
            routes = [(topic, qos) for topic, (qos, _) in self._routes.items()]
        self.connected_since_s = self._clock()
        self.disconnected_since_s = None
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

    def _lost(self, reason: str) -> None:
        """The connection is gone (or never came up): the next attempt goes to the next node."""
        if self.connected:
            log.warning("bridge disconnected from %s: %s", self.node.url(), reason)
        self._move_on = True  # lost, or closed before CONNACK (after ``stop`` it does not matter)
        with self._lock:
            self._mqtt.lost()
        self.connected_since_s = None
        if self.disconnected_since_s is None:
            self.disconnected_since_s = self._clock()
        self._close()

    def _close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

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

    def _new_mid(self) -> int:
        with self._lock:
            return self._mqtt.new_mid()

    def _send(self, data: bytes) -> bool:
        """Write ``data`` on the current connection (any thread); False if there is none or the write failed."""
        sock = self._sock
        return sock is not None and self._write(sock, data)

    def _write(self, sock: socket.socket, data: bytes) -> bool:
        try:
            with self._io:
                sock.sendall(data)
        except (OSError, ValueError) as exc:
            # A partial write leaves the stream broken: end the connection (the network thread reconnects).
            log.info("MQTT write failed (%s); the connection will be reconnected", exc)
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            return False
        self._mqtt.last_out = time.monotonic()
        return True
