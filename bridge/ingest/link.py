"""The state of the bridge's MQTT connection, apart from its socket (``BrokerLink``): which broker of several it is on,
the session, the connection's number and times, what a CONNACK and a loss change, and publishing through it; the
socket and the network thread are ``bridge.ingest.connection``'s.

The session's rules (message ids, what is in flight, resend with DUP after the CONNACK) are ``config.mqtt.session``'s,
shared with the meters' client. ``connection`` numbers the connections (a new number means a new session: retained
messages may need publishing again), and ``publish`` is the bridge's one way out (the republisher and the gap repairer
use it; thread-safe).

Several brokers (``BrokerAddress.fallbacks``): the bridge starts on the first of the list and moves on to the next,
round robin, whenever an attempt fails (TCP/TLS), the broker refuses it (CONNACK) or the connection is lost (the
watchdog's forced reconnect included). Each node is tried with its own login.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Final

from config.mqtt.packet import CONNACK_REASONS, string
from config.mqtt.session import Session
from config.settings import BrokerAddress

log = logging.getLogger(__name__)

KEEPALIVE_S = 30
MAX_QUEUED: Final = 10_000  # QoS 1 messages published and not yet acknowledged; beyond it ``publish`` refuses


class BrokerLink(ABC):
    """The connection's state and bookkeeping; a subclass owns the socket (``_send``, ``_close``)."""

    def __init__(
        self, broker: BrokerAddress, client_id: str, clock: Callable[[], float], status_topic: str | None
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
        # Routes, connection state, message ids, what is in flight. An RLock: a Condition over a plain Lock makes
        # gevent's lock yield to every runnable greenlet on each notify (bridge.ingest.store), and the network thread
        # notifies on every PUBACK.
        self._lock = threading.RLock()
        self._acked = threading.Condition(self._lock)  # notified on every PUBACK
        self._connections = 0

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

    # -- what the socket's owner provides -----------------------------------------------------------------------------

    @abstractmethod
    def _send(self, data: bytes) -> bool:
        """Write ``data`` on the current connection (any thread); False if there is none or the write failed."""

    @abstractmethod
    def _close(self) -> None:
        """Close the current connection's socket, if any."""

    # -- the connection's events (the network thread; never raise) ----------------------------------------------------

    def _accepted(self, code: int) -> bytes | None:
        """The connection's side of a CONNACK (the network thread): refused, logged and None (the next attempt goes to
        the next node); accepted, connected and numbered, and what to send again (``Session.connack``)."""
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

    # -- writing ------------------------------------------------------------------------------------------------------

    def _new_mid(self) -> int:
        with self._lock:
            return self._mqtt.new_mid()

    def _publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> tuple[int, bool] | None:
        """Publish (thread-safe): its message id (0 for QoS 0) and whether it went out now (if not, QoS 1 is held for
        the next CONNACK); None for QoS 1 with ``MAX_QUEUED`` messages already waiting."""
        with self._lock:
            packet = self._mqtt.publish(string(topic), payload, qos, retain)
            mid = self._mqtt.mid if qos else 0
        if packet is None:  # MAX_QUEUED in flight
            return None
        return mid, bool(packet) and self._send(packet)  # b"": not connected (QoS 1 held for the next CONNACK)

    def _wait_acked(self, mid: int, timeout_s: float) -> bool:
        """True once the PUBACK of ``mid`` came; False after ``timeout_s`` (the network thread must be reading)."""
        with self._acked:
            return self._acked.wait_for(lambda: self._mqtt.acknowledged(mid), timeout_s)
