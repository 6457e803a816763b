"""The bridge's MQTT connection: one connection (``config.mqtt``'s packets and session) to one of several brokers,
kept up by one network thread; what its messages mean is a subclass's (``bridge.ingest.subscriber``).

Why not paho: paho took 5 ``recv`` and 2 ``send`` per message received (the packet a byte at a time, its wake-up
socket), most of the CPU of a single-reading message (docs/performance.md "Ingest"). Here the network thread reads what
the socket holds (up to ``READ_BYTES``) and hands it to ``_take_chunk``: the subscriber takes every whole packet of it,
hands each message to its handler, and then acknowledges every QoS 1 message of that chunk in ONE write: a PUBACK goes
out only after ``Ingest.handle`` has taken the message into history (and the store's queue), as paho's PUBACK after
``on_message`` did, so the broker never drops a message the bridge has not taken (at least once; duplicates are
dropped by (meter, second)). Under gunicorn's gevent worker this thread is a greenlet that must neither wait behind
the SSE greenlets nor starve them (``_read``).

The connection's state (the session, the node, what a CONNACK and a loss change, publishing) is
``bridge.ingest.link``'s; this module is the shell: the socket, the network thread, the I/O lock (one lock orders every
write; on TLS, reads happen only when the selector says data is there, under that lock, so a TLS socket never reads
and writes at once).

A persistent session (fixed client id, clean session off): while the bridge is away the broker queues its QoS 1
messages (Mosquitto up to max_queued_messages; amqtt only for authenticated sessions). The first line of defence; seq
gap repair (bridge.ingest.repair) is the guarantee. Each connect logs whether the broker kept the session. The CONNECT
carries the Last Will ``offline`` on ``status_topic`` (the subscriber says ``online`` and ``offline`` there itself).

Several brokers (``bridge.ingest.link``): each attempt after the back-off (1 s, doubling up to 10 s while attempts
fail, as paho's ``reconnect_delay_set(1, 10)`` was).
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import ssl
import threading
import time
from abc import abstractmethod
from collections.abc import Callable
from typing import Final

from bridge.ingest.link import BrokerLink
from config.credentials import BRIDGE_USER
from config.mqtt.packet import CONNACK, DISCONNECT_PACKET, Packet, Will, connack_code, connack_session_present
from config.settings import BrokerAddress
from config.topics import STATUS_QOS
from config.wire import OFFLINE

log = logging.getLogger(__name__)

READ_BYTES: Final = 65_536  # one read: about 250 single-reading messages; a full one (a backlog) and the thread yields
CONNECT_TIMEOUT_S: Final = 10.0  # TCP, TLS and the CONNACK, each
IO_TIMEOUT_S: Final = 10.0  # a write the broker does not take for this long loses the connection
WAIT_S: Final = 1.0  # on TLS the network thread looks at ``stop`` this often (plain TCP: ``stop`` wakes its ``recv``)
MIN_BACKOFF_S: Final = 1.0
MAX_BACKOFF_S: Final = 10.0


class BrokerConnection(BrokerLink):
    """Connects to a broker in the background and keeps connecting; a subclass takes what is read (``_take_chunk``)
    and the broker's answer to each CONNECT (``_on_connack``)."""

    def __init__(
        self,
        broker: BrokerAddress,
        client_id: str,
        clock: Callable[[], float] = time.time,
        status_topic: str | None = None,
    ) -> None:
        super().__init__(broker, client_id, clock, status_topic)
        self._tls = ssl.create_default_context(cafile=broker.tls_ca) if broker.tls else None  # as paho's tls_set
        self._io = threading.Lock()  # every read and write of the socket
        self._sock: socket.socket | None = None
        self._in = bytearray()  # up to the CONNACK (read here); after it, the session takes the bytes
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- what the rest of the bridge asks -----------------------------------------------------------------------------

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

    def _close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    # -- writing ------------------------------------------------------------------------------------------------------

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
