"""One meter's MQTT 3.1.1 connection over a non-blocking socket, driven by the fleet's selector loop (I/O shell).

The packets are ``config.mqtt.packet``'s and the session's rules (message ids, in flight, resend, keepalive) are
``config.mqtt.session``'s; this class owns the socket, TLS, the bytes waiting to go out, and the way up (TCP, TLS,
CONNECT), and turns the session's events into callbacks. It behaves as paho does where the meters depend on it:

- ``publish`` at QoS 1 keeps the message until its PUBACK; messages not acknowledged when the connection is lost are
  sent again (DUP set) after the next CONNACK, oldest first, and a message published while disconnected waits for the
  next connection (at QoS 0 it is dropped). At most ``max_queued`` messages wait; beyond that ``publish`` refuses.
- keepalive: a PINGREQ when nothing was sent or received for ``keepalive_s``; the connection counts as lost when the
  broker has not answered it ``keepalive_s`` later.
- callbacks (``on_connect(code)``, ``on_disconnect(reason)``, ``on_publish(mid)``, ``on_message(message)``,
  ``on_suback(mid, granted)``) run in the loop's thread, from ``read``/``write``/``misc``; they must not raise (the
  owner's callbacks catch).

``connect`` never blocks the loop that drives every meter: the way up (TCP, TLS, the connect deadline, resolving
host names) is ``config.mqtt.link``'s, whose ``Link`` this class extends.

Reading takes whatever the socket holds (up to ``READ_BYTES``) in one ``recv`` and handles every whole packet in it;
a published message is one ``send`` (nothing is batched across meters: each meter has its own connection).
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import time
from collections.abc import Callable
from typing import Final

from config.mqtt.link import MQTT, Link
from config.mqtt.packet import (
    CONNACK_REASONS,
    DISCONNECT_PACKET,
    SUBACK_FAILURE,
    Message,
    ProtocolError,
    RawPublish,
    Will,
    as_message,
    puback_packet,
    string,
    subscribe_packet,
)
from config.mqtt.session import Connack, Dead, Event, Session, Suback

log = logging.getLogger(__name__)

READ_BYTES: Final = 65_536


class MqttConnection(Link):
    """A minimal MQTT 3.1.1 client for one meter: connect, publish (QoS 0/1), subscribe, keepalive, Last Will."""

    def __init__(
        self,
        client_id: str,
        *,
        will: Will | None = None,
        username: str | None = None,
        password: str | None = None,
        tls: ssl.SSLContext | None = None,
        max_queued: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.client_id = client_id
        self.will = will
        self.username = username
        self.password = password
        self.tls = tls
        self.clock = clock
        self.keepalive_s = 60
        self.connected = False  # CONNACK accepted, and the socket still open
        self.on_connect: Callable[[int], None] | None = None
        self.on_disconnect: Callable[[str], None] | None = None
        self.on_suback: Callable[[int, bool], None] | None = None  # (mid, every filter granted)
        self.on_publish: Callable[[int], None] | None = None
        self.on_message: Callable[[Message], None] | None = None
        # Ids, the QoS 1 messages in flight (all of them go again after each CONNACK), keepalive. ``connected``
        # above mirrors its ``connected`` (a plain attribute: the fleet's loop reads it for every reading).
        self._session = Session(self.keepalive_s, max_queued)
        self._topics: dict[str, bytes] = {}  # topic -> its length-prefixed bytes

    # -- what the loop asks -------------------------------------------------------------------------------------

    def is_acked(self, mid: int) -> bool:
        """The broker acknowledged message ``mid`` (or it was QoS 0 and sent)."""
        return self._session.acknowledged(mid)

    @property
    def queued(self) -> int:
        """QoS 1 messages held until their PUBACK."""
        return len(self._session.inflight)

    # -- connection -----------------------------------------------------------------------------------------------

    def _send_connect(self) -> None:
        self._state = MQTT
        self._session.keepalive_s = self.keepalive_s
        self._queue(
            self._session.connect(
                self.clock(), self.client_id, will=self.will, username=self.username, password=self.password
            )
        )

    def disconnect(self) -> None:
        """Send DISCONNECT (the broker then does not publish the Will) and close; no callback."""
        if self._sock is None:
            return
        if self._state == MQTT:
            self._queue(DISCONNECT_PACKET)
        self._close()

    def _close(self) -> None:
        sock, self._sock = self._sock, None
        self.connected = False
        self._session.lost()
        self._state = MQTT
        self._handshake_wants_write = False
        self._out.clear()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    def _lost(self, reason: str) -> None:
        if self._sock is None:
            return
        self._close()
        if self.on_disconnect is not None:
            self.on_disconnect(reason)

    # -- sending --------------------------------------------------------------------------------------------------

    def _queue(self, packet: bytes) -> None:
        """Send ``packet`` now if nothing is waiting, else after what is."""
        if self._out:
            self._out += packet
            return
        self._out += packet
        self.write()

    def write(self) -> None:
        """Give the socket what it takes of the waiting bytes (or take the connect a step further)."""
        if self._state != MQTT:
            self._progress()
            return
        sock = self._sock
        if sock is None or not self._out:
            return
        try:
            sent = sock.send(self._out)
        except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            return
        except OSError as exc:
            self._lost(f"send failed: {exc}")
            return
        del self._out[:sent]
        self._session.last_out = self.clock()

    def _topic(self, topic: str) -> bytes:
        encoded = self._topics.get(topic)
        if encoded is None:
            if len(self._topics) > 64:
                self._topics.clear()
            encoded = self._topics[topic] = string(topic)
        return encoded

    def publish(self, topic: str, payload: bytes, qos: int = 1, *, retain: bool = False) -> int | None:
        """Publish; the message id (0 for QoS 0), or None if ``max_queued`` QoS 1 messages already wait."""
        session = self._session
        packet = session.publish(self._topic(topic), payload, qos, retain)
        if packet is None:
            return None
        if packet:  # b"": not connected (QoS 1 waits in the session for the next CONNACK; QoS 0 is dropped)
            self._queue(packet)
        return session.mid if qos else 0

    def subscribe(self, topic: str, qos: int) -> int | None:
        """Subscribe (sent now if connected; subscriptions are not kept across connections: subscribe in
        ``on_connect``). The SUBSCRIBE's message id (``on_suback`` tells its outcome), or None if not connected."""
        if not self.connected:
            return None
        mid = self._session.new_mid()
        self._queue(subscribe_packet(mid, topic, qos))
        return mid

    # -- receiving ------------------------------------------------------------------------------------------------

    def read(self) -> None:
        """Take what the socket holds and handle every whole packet in it (or take the connect a step further)."""
        if self._state != MQTT:
            self._progress()
            return
        sock = self._sock
        if sock is None:
            return
        received = b""
        while True:
            try:
                data = sock.recv(READ_BYTES)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                break
            except OSError as exc:
                self._lost(f"receive failed: {exc}")
                return
            if not data:
                self._lost("connection closed by the broker")
                return
            received = received + data if received else data  # more than one read: rare (a full buffer)
            # A plain socket that returned less than asked holds nothing more; TLS may have decrypted bytes pending.
            if len(data) < READ_BYTES and not (isinstance(sock, ssl.SSLSocket) and sock.pending()):
                break
        try:
            for event in self._session.receive(received, self.clock()):
                if type(event) is int:  # a PUBACK: the meters' per-reading event, first
                    if self.on_publish is not None:
                        self.on_publish(event)
                else:
                    self._handle(event)
                if self._sock is None:
                    return
        except ProtocolError as exc:
            log.warning("mqtt %s: %s; closing", self.client_id, exc)
            self._lost(f"protocol error: {exc}")

    def _handle(self, event: Event) -> None:
        """One of the session's events other than a PUBACK, as callbacks (a malformed packet: raised)."""
        if isinstance(event, RawPublish):
            message = as_message(event)
            if message.qos == 1:
                self._queue(puback_packet(message.mid))
            if self.on_message is not None:
                self.on_message(message)
        elif isinstance(event, Connack):
            self._connack(event)
        elif isinstance(event, Suback):
            granted = SUBACK_FAILURE not in event.codes
            if self.on_suback is not None:
                self.on_suback(event.mid, granted)
            elif not granted:
                log.warning("mqtt %s: subscription %d refused by the broker", self.client_id, event.mid)
        elif isinstance(event, ProtocolError):
            raise event

    def _connack(self, connack: Connack) -> None:
        code = connack.code
        if code != 0:
            reason = CONNACK_REASONS.get(code, f"refused ({code})")
            if self.on_connect is not None:
                self.on_connect(code)
            self._lost(f"connection refused: {reason}")
            return
        self.connected = True
        # Messages not acknowledged on the last connection, or published while there was none, oldest first.
        if connack.resend:
            self._queue(connack.resend)
        if self.on_connect is not None:
            self.on_connect(0)

    # -- keepalive --------------------------------------------------------------------------------------------------

    def misc(self) -> None:
        """Keepalive: ping when idle for ``keepalive_s``; lost when a ping was not answered within ``keepalive_s``;
        lost when TCP and TLS are not done ``CONNECT_TIMEOUT_S`` after ``connect``."""
        if self._sock is None:
            return
        now = self.clock()
        if self._state != MQTT:
            self._connect_deadline(now)
            return
        due = self._session.tick(now)
        if isinstance(due, Dead):
            self._lost(due.reason)
        elif due:
            self._queue(due)
