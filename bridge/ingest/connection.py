"""The bridge's MQTT connection: one connection (``config.mqtt``'s packets and session) to one of several brokers,
kept up by one network thread; what its messages mean is a subclass's (``bridge.ingest.subscriber``).

Why not paho: paho took 5 ``recv`` and 2 ``send`` per message received (the packet a byte at a time, its wake-up
socket), most of the CPU of a single-reading message (docs/performance.md "Ingest"). Here the network thread reads what
the socket holds (up to ``READ_BYTES``) and hands it to ``_take_chunk``: the subscriber takes every whole packet of it,
hands each message to its handler, and then acknowledges every QoS 1 message of that chunk in ONE write: a PUBACK goes
out only after ``Ingest.handle`` has taken the message into history (and the store's queue), as paho's PUBACK after
``on_message`` did, so the broker never drops a message the bridge has not taken (at least once; duplicates are
dropped by (meter, second)). Under gunicorn's gevent worker this thread is a greenlet: it waits in
``recv`` itself, so it runs as soon as its socket is readable, ahead of the SSE greenlets queued to run (readings close
windows: they must not wait behind a storm of connects), and after a chunk that filled its buffer (a backlog) it yields
(``time.sleep(0)``), so that a long backlog does not starve them.

The session's rules (message ids, what is in flight, resend with DUP after the CONNACK) are ``config.mqtt.session``'s,
shared with the meters' client; this module is the shell: the socket, the network thread, the lock. ``connection``
numbers the connections (a new number means a new session: retained messages may need publishing again), and
``publish`` is the bridge's one way out (the republisher and the gap repairer use it; thread-safe: one lock orders
every write on the socket; on TLS, reads happen only when the selector says data is there, under that lock, so a TLS
socket never reads and writes at once).

A persistent session (fixed client id, clean session off): while the bridge is away the broker queues its QoS 1
messages (Mosquitto up to max_queued_messages; amqtt only for authenticated sessions). The first line of defence; seq
gap repair (bridge.ingest.repair) is the guarantee. Each connect logs whether the broker kept the session.

The bridge's own availability (``status_topic``): its CONNECT carries a Last Will ``offline`` (the subscriber says
``online`` and ``offline`` there itself).

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
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Final

from config.credentials import BRIDGE_USER
from config.mqtt.packet import (
    CONNACK,
    CONNACK_REASONS,
    DISCONNECT_PACKET,
    Packet,
    Will,
    connack_code,
    connack_session_present,
    string,
)
from config.mqtt.session import Session
from config.settings import BrokerAddress
from config.topics import STATUS_QOS
from config.wire import OFFLINE

log = logging.getLogger(__name__)

KEEPALIVE_S = 30
READ_BYTES: Final = 65_536  # one read: about 250 single-reading messages; a full one (a backlog) and the thread yields
CONNECT_TIMEOUT_S: Final = 10.0  # TCP, TLS and the CONNACK, each
IO_TIMEOUT_S: Final = 10.0  # a write the broker does not take for this long loses the connection
WAIT_S: Final = 1.0  # on TLS the network thread looks at ``stop`` this often (plain TCP: ``stop`` wakes its ``recv``)
MIN_BACKOFF_S: Final = 1.0
MAX_BACKOFF_S: Final = 10.0
MAX_QUEUED: Final = 10_000  # QoS 1 messages published and not yet acknowledged; beyond it ``publish`` refuses


class BrokerConnection(ABC):
    """Connects to a broker in the background and keeps connecting; a subclass takes what is read (``_take_chunk``)
    and the broker's answer to each CONNECT (``_on_connack``)."""

    def __init__(
        self,
        broker: BrokerAddress,
        client_id: str,
        clock: Callable[[], float] = time.time,
        status_topic: str | None = None,
    ) -> None:
        self.brokers = broker.addresses()  # ``node`` is the broker of the current (or next) connection
        self.node = self.brokers[0]
        self._move_on = False  # the last attempt failed or the connection was lost: the next attempt uses the next node
        self.client_id = client_id
        self.status_topic = status_topic  # the bridge's availability (Last Will, online, offline); None: none
        # Message ids, what is in flight (QoS 1 until its PUBACK, sent again after each CONNACK), the CONNACK's
        # state (``connected``), when the last write went out (monotonic); guarded by ``_lock`` where other threads
        # publish. Its input buffer is the network thread's alone, and so are the PUBACKs' pops from what is in
        # flight, made without the lock (one dict pop is atomic; only that thread iterates it, in ``connack``), so a
        # chunk takes the lock only to notify whoever waits for a PUBACK.
        self._mqtt = Session(KEEPALIVE_S, MAX_QUEUED)
        self._clock = clock  # wall seconds, as bridge.ingest.messages's arrivals
        # Written by the network thread, read by others (a float or None: one reference, no lock needed).
        self.started_s = clock()  # when this connection was made (or started): the ages' origin before any message
        self.connected_since_s: float | None = None  # None while disconnected
        self.disconnected_since_s: float | None = self.started_s  # None while connected
        self._tls = ssl.create_default_context(cafile=broker.tls_ca) if broker.tls else None  # as paho's tls_set
        # Routes, connection state, message ids, what is in flight. An RLock: a Condition over a plain Lock makes
        # gevent's lock yield to every runnable greenlet on each notify (bridge.ingest.store), and the network thread
        # notifies on every PUBACK.
        self._lock = threading.RLock()
        self._acked = threading.Condition(self._lock)  # notified on every PUBACK
        self._io = threading.Lock()  # every read and write of the socket
        self._connections = 0
        self._sock: socket.socket | None = None
        self._in = bytearray()  # up to the CONNACK (read here); after it, the session takes the bytes
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- what the rest of the bridge asks -----------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """The broker accepted the current connection (CONNACK) and it was not lost or stopped since."""
        return self._mqtt.connected

    @connected.setter
    def connected(self, value: bool) -> None:
        self._mqtt.connected = value

    def connection(self) -> int | None:
        """Number of the current connection (1 for the first, then one more per reconnect); None while disconnected."""
        with self._lock:
            return self._connections if self.connected else None

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> bool:
        """Publish (thread-safe); True if sent, or (QoS 1) held until its PUBACK and sent again after a reconnect.
        False for QoS 0 while disconnected, or QoS 1 with ``MAX_QUEUED`` messages already waiting."""
        published = self._publish(topic, payload, qos, retain)
        return published is not None and (published[1] or qos > 0)

    def node_url(self) -> str:
        """The URL (no password) of the broker the bridge is on, or tries next."""
        return self.node.url()

    def start(self) -> None:
        """Start the network thread (it connects, and retries until a broker is there)."""
        self.started_s = self.disconnected_since_s = self._clock()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="mqtt-subscriber", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Disconnect (DISCONNECT: the broker keeps the session) and end the network thread (waited for up to
        ``timeout``: within gunicorn's graceful timeout, so that the store still closes after it)."""
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

    # -- what a subclass makes of the connection ----------------------------------------------------------------------

    @abstractmethod
    def _take_chunk(self, data: bytes) -> bool:
        """Take the bytes of one read (the network thread); False if the connection is lost."""

    @abstractmethod
    def _on_connack(self, code: int, session_present: bool) -> bool:
        """The broker's answer to CONNECT (the network thread; never raises); True if accepted."""

    def _accepted(self, code: int) -> bytes | None:
        """The connection's side of the broker's answer to CONNECT (the network thread): refused (``code`` not 0),
        logged, the next attempt goes to the next node, None; accepted, connected, one more connection and what is in
        flight to send again (``Session.connack``: DUP set, oldest first; ``b""`` if nothing)."""
        if code != 0:
            self._move_on = True
            log.warning("broker %s refused the bridge: %s", self.node.url(), CONNACK_REASONS.get(code, code))
            return None
        with self._lock:
            resend = self._mqtt.connack(code)
            self._connections += 1
        self.connected_since_s = self._clock()
        self.disconnected_since_s = None
        return resend

    # -- the network thread -------------------------------------------------------------------------------------------

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

    # -- the connection's events (the network thread; never raise) ----------------------------------------------------

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

    # -- writing ------------------------------------------------------------------------------------------------------

    def _new_mid(self) -> int:
        with self._lock:
            return self._mqtt.new_mid()

    def _publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> tuple[int, bool] | None:
        """Publish (thread-safe): its message id (0 for QoS 0) and whether it went out now (False: not connected, or
        the write failed; QoS 1 is held until its PUBACK and sent again after the next CONNACK); None for QoS 1 with
        ``MAX_QUEUED`` messages already waiting."""
        with self._lock:
            packet = self._mqtt.publish(string(topic), payload, qos, retain)
            mid = self._mqtt.mid if qos else 0
        if packet is None:  # MAX_QUEUED in flight
            return None
        return mid, bool(packet) and self._send(packet)  # b"": not connected (QoS 1 held for the next CONNACK)

    def _wait_acked(self, mid: int, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the PUBACK of the QoS 1 message ``mid`` (the network thread must be reading);
        True if it came."""
        session = self._mqtt
        with self._acked:
            return self._acked.wait_for(lambda: session.acknowledged(mid), timeout_s)

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
