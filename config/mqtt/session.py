"""An MQTT 3.1.1 client session as a state machine (pure: no sockets, no clock; the time is an argument).

The rules a client keeps beside its socket, in one place for the meters' connection (``config.mqtt.connection``) and
the bridge's subscriber (``bridge.ingest.subscriber``), as mqttproto's ``client_state_machine`` keeps them:

- message ids: 1..65,535, wrapping, never one still in flight (``new_mid``);
- in flight: every QoS 1 PUBLISH until its PUBACK, at most ``max_inflight`` (``publish`` refuses beyond: None);
  published while disconnected, it waits (QoS 0 is dropped);
- after each accepted CONNACK, every message in flight goes (again) with DUP set, oldest first, same ids
  (``connack``; on the wire after the CONNACK);
- keepalive (``tick``): a PINGREQ when nothing went out or came in for ``keepalive_s`` seconds; the connection is dead
  when ``keepalive_s`` seconds after it nothing at all came in (any bytes received answer it, as a PINGRESP would).

The meters' connection uses all of it. The bridge's subscriber reads the CONNACK itself (``connack``: a ``Connack``
event there is a protocol error) and judges its connection's liveness itself (``bridge.ingest.health``, with a
PINGREQ when nothing went out for its keepalive, by ``last_out``): it uses neither ``tick`` nor ``Connack``.

Events in: ``connect`` (the transport is up: the CONNECT to send), ``receive`` (bytes as they come: a packet cut in
two waits for its rest) or ``handle`` (packets already split), ``connack`` (for a shell that reads the CONNACK
itself), ``publish``, ``lost``, ``tick``; a shell that writes sets ``last_out``. Out: the bytes to send, and the
events of what came in, in order (``Event``): a message (``RawPublish``, not acknowledged: the shell sends
``puback_packet``/``puback_packets`` when it has taken it), an acknowledged message id (a bare ``int``: no object per
PUBACK), ``Connack``, ``Suback``, and, last, a ``ProtocolError`` if a packet was malformed (the events before it
happened; the connection must be closed). The list of events is reused by the next call (no list per read).

Cost: the meters publish 10,000 readings a second from one thread and the bridge takes 30,000, so the per-message
paths (``publish``, a PUBACK, a PUBLISH received) are a few attribute operations and no object beyond the packet's
own (``bench.mqtt_micro`` times them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, NamedTuple

from config.mqtt.packet import (
    CONNACK,
    PINGREQ_PACKET,
    PINGRESP,
    PUBACK,
    PUBLISH,
    SUBACK,
    UNSUBACK,
    Packet,
    ProtocolError,
    RawPublish,
    Will,
    as_duplicate,
    connack_code,
    connack_session_present,
    connect_packet,
    next_mid,
    packet_id,
    parse_publish_raw,
    publish_packet,
    split_packets,
    suback_codes,
)


class Connack(NamedTuple):
    """The broker answered CONNECT: ``code`` 0 is accepted, and ``resend`` (DUP set, oldest first) goes first."""

    code: int
    session_present: bool
    resend: bytes


class Suback(NamedTuple):
    """The broker answered SUBSCRIBE ``mid``: one return code per filter (``SUBACK_FAILURE``: refused)."""

    mid: int
    codes: bytes


class Dead(NamedTuple):
    """The session judged the connection dead (``tick``)."""

    reason: str


KEEPALIVE_DEAD: Final = Dead("keepalive: the broker did not answer")

Event = RawPublish | int | Connack | Suback | ProtocolError


class Session:
    """One client's MQTT session across its connections: ids, in flight, resend, keepalive (no I/O)."""

    __slots__ = (
        "_buffer",
        "_events",
        "connected",
        "inflight",
        "keepalive_s",
        "last_in",
        "last_out",
        "max_inflight",
        "mid",
        "ping_sent",
    )

    def __init__(self, keepalive_s: int = 60, max_inflight: int = 10_000) -> None:
        self.keepalive_s = keepalive_s
        self.max_inflight = max_inflight
        self.connected = False  # an accepted CONNACK on the current connection
        # mid -> PUBLISH packet, QoS 1, not acknowledged, oldest first (a dict keeps insertion order)
        self.inflight: dict[int, bytes] = {}
        self.mid = 0  # the last message id given out
        self.last_in = self.last_out = 0.0  # when bytes last came in, went out (the shell's clock, seconds)
        self.ping_sent: float | None = None  # when the unanswered PINGREQ went out
        self._buffer = bytearray()  # the start of a packet whose rest has not come yet
        # The list ``handle`` returns, refilled by each call: a meter's read holds one PUBACK, and a new list per read
        # would be an object per reading on the fleet's hot path.
        self._events: list[Event] = []

    # -- ids and sending --------------------------------------------------------------------------------------------

    def new_mid(self) -> int:
        """A message id (SUBSCRIBE, UNSUBSCRIBE, PUBLISH) after the last one, not in flight."""
        self.mid = mid = next_mid(self.mid, self.inflight)
        return mid

    def publish(self, topic: bytes, payload: bytes, qos: int, retain: bool = False) -> bytes | None:
        """The PUBLISH (``topic`` length-prefixed) to send now; ``b""`` when not connected (QoS 1: held until the
        next CONNACK; QoS 0: dropped); None when ``max_inflight`` messages are already in flight. Its id is
        ``mid`` (QoS 1)."""
        if qos == 0:
            return publish_packet(topic, payload, 0, retain=retain) if self.connected else b""
        inflight = self.inflight
        if len(inflight) >= self.max_inflight:
            return None
        self.mid = mid = next_mid(self.mid, inflight)
        packet = inflight[mid] = publish_packet(topic, payload, 1, mid, retain=retain)
        return packet if self.connected else b""

    # -- the connection's life --------------------------------------------------------------------------------------

    def connect(
        self,
        now: float,
        client_id: str,
        *,
        clean_session: bool = True,
        will: Will | None = None,
        username: str | None = None,
        password: str | None = None,
    ) -> bytes:
        """The transport is up: the CONNECT to send (keepalive ``keepalive_s``); the clocks start at ``now``."""
        self.connected = False
        self._buffer.clear()
        self.last_in = self.last_out = now
        self.ping_sent = None
        return connect_packet(
            client_id, self.keepalive_s, clean_session=clean_session, will=will, username=username, password=password
        )

    def connack(self, code: int) -> bytes:
        """The CONNACK's return code: accepted (0), connected, and what is in flight to send again (DUP set, oldest
        first, the same ids; ``b""`` if nothing); refused, ``b""``."""
        if code != 0:
            self.connected = False
            return b""
        self.connected = True
        return b"".join([as_duplicate(packet) for packet in self.inflight.values()])

    def lost(self) -> None:
        """The connection is gone: not connected, the partial input forgotten; what is in flight stays for the next
        CONNACK."""
        self.connected = False
        self.ping_sent = None
        self._buffer.clear()

    def acknowledged(self, mid: int) -> bool:
        """The broker acknowledged ``mid`` (or it was never in flight)."""
        return mid not in self.inflight

    # -- receiving --------------------------------------------------------------------------------------------------

    def receive(self, data: bytes | bytearray, now: float) -> list[Event]:
        """Bytes from the broker at ``now``: the events of every whole packet so far (a packet cut short waits for its
        rest); any bytes answer a PINGREQ."""
        buffer = self._buffer
        buffer += data
        self.last_in = now
        self.ping_sent = None
        try:
            packets = split_packets(buffer)
        except ProtocolError as exc:
            buffer.clear()
            return [exc]
        return self.handle(packets)

    def handle(self, packets: Sequence[Packet]) -> list[Event]:
        """The events of these packets, in order; a malformed one ends the list as a ``ProtocolError``. The list is
        the session's own, valid until the next ``receive`` or ``handle``: take what you need before calling again."""
        events = self._events
        events.clear()
        append = events.append
        inflight = self.inflight
        try:
            for packet in packets:
                first, body = packet
                kind = first & 0xF0
                if kind == PUBLISH:
                    append(parse_publish_raw(packet))
                elif kind == PUBACK:
                    if len(body) != 2:
                        raise ProtocolError("malformed PUBACK")
                    mid = (body[0] << 8) | body[1]
                    if inflight.pop(mid, None) is not None:
                        append(mid)
                elif kind == CONNACK:
                    code = connack_code(packet)
                    append(Connack(code, connack_session_present(packet), self.connack(code)))
                elif kind == SUBACK:
                    append(Suback(packet_id(packet), suback_codes(packet)))
                elif kind == PINGRESP:
                    self.ping_sent = None
                elif kind != UNSUBACK:
                    raise ProtocolError(f"unexpected packet type 0x{first:02x}")
        except ProtocolError as exc:
            append(exc)
        return events

    # -- keepalive --------------------------------------------------------------------------------------------------

    def tick(self, now: float) -> bytes | Dead:
        """Keepalive at ``now``: ``PINGREQ_PACKET`` to send (idle for ``keepalive_s``), ``KEEPALIVE_DEAD`` (a PINGREQ
        unanswered for ``keepalive_s``) or ``b""``. Connected or waiting for the CONNACK alike (a silent broker)."""
        keepalive_s = self.keepalive_s
        if keepalive_s <= 0:
            return b""
        ping_sent = self.ping_sent
        if ping_sent is not None:
            return KEEPALIVE_DEAD if now - ping_sent >= keepalive_s else b""
        if now - self.last_out >= keepalive_s or now - self.last_in >= keepalive_s:
            self.ping_sent = now
            return PINGREQ_PACKET
        return b""
