"""The embedded amqtt broker, with four corrections to amqtt 0.12.

1. Authentication before any session is touched. amqtt 0.12 reads a CONNECT, then at once deletes the session of its
   client id (clean session) or takes it over (copying in the newcomer's user name, password and will), then kicks the
   connected owner off, and only then asks its auth plugins, answering CONNACK 5 too late: any client, even without a
   password, could throw the bridge off with the bridge's client id. ``FleetBroker`` runs the auth plugins (password
   file and ``broker.client_ids``) right after reading the CONNECT and refuses with CONNACK 5 before any of that.
2. A maximum packet size (``broker.limits.MAX_PACKET_BYTES``; amqtt has no such option): every client's bytes pass a
   ``PacketSizeGuard``, and the connection is closed as soon as a fixed header announces a larger packet, before its
   body is read.
3. Retained messages: when any client connects, ``Broker._handle_client_session`` sends it the retained messages
   matching *every* subscription filter held by *any* client in the broker (``for topic in self._subscriptions``),
   not only its own. With the bridge subscribed to ``meters/+/status``, a new ``mosquitto_sub -t
   'meters/+/reading'`` first received the meters' retained ``online`` messages. ``FleetBroker`` delivers retained
   messages for a filter only to a session that holds that subscription; the SUBSCRIBE path (subscription added,
   then retained sent) is unchanged.
4. Keepalive (MQTT 3.1.1 section 3.1.2.10: a server that receives no packet from a client within one and a half times
   its keepalive must close the connection as if the network had failed). amqtt's reader loop waits for the next
   packet for ``session.keep_alive`` seconds, then calls its handler's ``handle_read_timeout``, which does nothing and
   reads on: a frozen client (power or network gone, no FIN) stayed connected forever and its Will was never sent.
   ``FleetBroker`` sets that wait to 1.5 x the client's keepalive, and its ``KeepaliveHandler`` aborts the connection
   on the timeout; amqtt then ends the session as for any lost connection, publishing the Will.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import warnings
from collections.abc import Awaitable, Callable
from typing import Any, Final, NoReturn

from amqtt.adapters import ReaderAdapter, StreamReaderAdapter, StreamWriterAdapter
from amqtt.broker import Broker
from amqtt.errors import AMQTTError, MQTTError, NoDataError
from amqtt.mqtt.connack import NOT_AUTHORIZED, ConnackPacket
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.utils import format_client_message, gen_client_id

from broker.limits import MAX_PACKET_BYTES, PacketSizeGuard, PacketTooLarge

log = logging.getLogger("broker")

SHUTDOWN_GRACE_S = 1.0
SHUTDOWN_TIMEOUT_S = 5.0  # amqtt's own shutdown, bounded: once it hung, with sessions of meters still connected
LEFTOVER_WAIT_S = 2.0
KEEPALIVE_TOLERANCE: Final = 1.5  # MQTT 3.1.1 section 3.1.2.10: silent for 1.5 x keepalive, the client is gone


class GuardedReader(ReaderAdapter):  # type: ignore[misc]
    """A client's byte stream, through a ``PacketSizeGuard``: a packet over the limit closes the connection, and so
    does ``hang_up``."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, max_bytes: int) -> None:
        self._inner = StreamReaderAdapter(reader)
        self._writer = writer
        self._guard = PacketSizeGuard(max_bytes)
        self._hung_up: str | None = None

    def hang_up(self, why: str) -> None:
        """Abort the connection now, as if the network had failed (no FIN handshake, nothing left to flush: the
        client may be frozen with its receive window full); the next ``read`` ends the stream."""
        self._hung_up = why
        self._writer.transport.abort()

    async def read(self, n: int = -1) -> bytes:
        """The next ``n`` bytes; ConnectionResetError (amqtt's end of stream) once a packet is over the limit or the
        connection was hung up."""
        why = self._hung_up or self._guard.refused
        if why is not None:
            raise ConnectionResetError(why)
        data: bytes = await self._inner.read(n)
        try:
            self._guard.feed(data)
        except PacketTooLarge as exc:
            peer = self._writer.get_extra_info("peername")
            log.warning("closing the connection of %s: %s", peer, exc)
            self._writer.close()
            raise ConnectionResetError(str(exc)) from exc
        return data

    def feed_eof(self) -> None:
        """End the stream (amqtt calls this when it closes a connection)."""
        self._inner.feed_eof()


class KeepaliveHandler(BrokerProtocolHandler):  # type: ignore[misc]
    """amqtt's broker-side protocol handler, hanging up on a client that sent nothing for 1.5 x its keepalive."""

    def handle_read_timeout(self) -> None:
        """No packet began within ``session.keep_alive`` (1.5 x the client's keepalive, set by ``FleetBroker``):
        abort the connection; amqtt's reader loop then ends and the broker publishes the client's Will."""
        # amqtt calls this from its reader loop, which reads on after it: the next read finds the stream ended.
        session, reader = self.session, self.reader
        if session is None or not isinstance(reader, GuardedReader):
            return  # every connection of FleetBroker's TCP listeners has a GuardedReader (stream_connected)
        log.warning(
            "closing the connection of %r: silent for %.1f s (1.5 x its keepalive)",
            session.client_id,
            session.keep_alive,
        )
        reader.hang_up("keepalive expired")


class FleetBroker(Broker):  # type: ignore[misc]
    """amqtt's Broker, authenticating before it touches a session, refusing packets over ``max_packet_bytes``,
    sending retained messages only to sessions subscribed to the filter, and closing the connection of a client
    silent for 1.5 x its keepalive."""

    max_packet_bytes = MAX_PACKET_BYTES

    async def stream_connected(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, listener_name: str
    ) -> None:
        await self._client_connected(
            listener_name, GuardedReader(reader, writer, self.max_packet_bytes), StreamWriterAdapter(writer)
        )

    async def _initialize_client_session(
        self, reader: ReaderAdapter, writer: Any, remote_address: str, remote_port: int
    ) -> tuple[Any, Any]:
        # amqtt 0.12's own method, with the authentication moved before the session lookup (see the module docstring).
        peer = format_client_message(address=remote_address, port=remote_port)
        try:
            handler, client_session = await KeepaliveHandler.init_from_connect(reader, writer, self.plugins_manager)
        except AMQTTError as exc:
            self.logger.warning(f"[MQTT-3.1.0-1] {peer}: Can't read first packet as CONNECT: {exc}")
            raise AMQTTError(exc) from exc
        except MQTTError as exc:
            self.logger.warning(f"Invalid connection from {peer}")
            await writer.close()
            raise MQTTError(exc) from exc
        except NoDataError as exc:
            self.logger.error(f"No data from {peer} : {exc}")
            raise AMQTTError(exc) from exc

        if not await self._authenticate(client_session, None):
            log.warning("refused %s: user %r, client id %r", peer, client_session.username, client_session.client_id)
            await ConnackPacket.build(0, NOT_AUTHORIZED).to_stream(writer)
            await writer.close()
            raise MQTTError(f"{peer} not authorized")

        if client_session.clean_session:
            if client_session.client_id is not None and client_session.client_id != "":
                await self._delete_session(client_session.client_id)
            else:
                client_session.client_id = gen_client_id()
            client_session.parent = 0
        elif client_session.client_id in self._sessions:
            existing, _ = self._sessions[client_session.client_id]
            for name in (
                "will_flag",
                "will_message",
                "will_topic",
                "will_qos",
                "will_retain",  # amqtt 0.12 forgets it: the Will kept the first connection's retain flag
                "keep_alive",
                "username",
                "password",
            ):
                setattr(existing, name, getattr(client_session, name))
            client_session = existing
            client_session.parent = 1
        else:
            client_session.parent = 0

        # amqtt's reader loop waits session.keep_alive seconds for the next packet, then calls the handler's
        # handle_read_timeout: the server's deadline, 1.5 x the keepalive the client asked for (plus amqtt's
        # optional extra delay). Set from the CONNECT at every connection, so it never compounds.
        timeout_disconnect_delay = self.config.get("timeout-disconnect-delay", 0)
        if client_session.keep_alive > 0:
            client_session.keep_alive *= KEEPALIVE_TOLERANCE
            if isinstance(timeout_disconnect_delay, int):
                client_session.keep_alive += timeout_disconnect_delay
        return handler, client_session

    async def _publish_retained_messages_for_subscription(self, subscription: tuple[str, int], session: Any) -> None:
        topic_filter = subscription[0]
        holders = self._subscriptions.get(topic_filter, [])
        if any(held.client_id == session.client_id for held, _ in holders):
            await super()._publish_retained_messages_for_subscription(subscription, session)


def make_broker(config: dict[str, Any]) -> FleetBroker:
    """The broker of ``config``, its plugins loaded (amqtt reads its password file here); call in a running loop."""
    with warnings.catch_warnings():
        # amqtt 0.12 calls its ACL plugin's `acl` deprecated, yet refuses the `subscribe_acl` it recommends.
        warnings.filterwarnings("ignore", "The 'acl' option is deprecated", DeprecationWarning)
        return FleetBroker(config)


async def serve(config: dict[str, Any], url: str, loaded: Callable[[], None] | None = None) -> None:
    """Run the broker of ``config`` (``broker.amqtt_config``; it listens at ``url``) until SIGINT/SIGTERM, then shut it
    down cleanly. ``loaded`` is called once the broker has read the files its config names."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    broker = make_broker(config)
    if loaded is not None:
        loaded()
    await broker.start()
    log.info("amqtt broker listening on %s", url)
    await stop.wait()
    # Clients stopped by the same signal (make up, compose) still publish their clean "offline": give them a moment.
    stop.clear()
    log.info("stopping amqtt broker in %.1f s (a second signal stops it now)", SHUTDOWN_GRACE_S)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), SHUTDOWN_GRACE_S)
    if not await finished(broker.shutdown(), SHUTDOWN_TIMEOUT_S):
        _exit_now("amqtt's shutdown did not finish in %.0f s; exiting anyway", SHUTDOWN_TIMEOUT_S)
    # amqtt 0.12 leaves tasks behind when clients connect during shutdown (reconnecting meters); some ignore one
    # cancellation, and asyncio.run() would wait for them forever. Cancel them, give them a moment, then go.
    current = asyncio.current_task()
    leftovers = [task for task in asyncio.all_tasks() if task is not current]
    for task in leftovers:
        task.cancel()
    if leftovers:
        _, pending = await asyncio.wait(leftovers, timeout=LEFTOVER_WAIT_S)
        if pending:
            _exit_now("%d amqtt tasks did not stop; exiting anyway", len(pending))
    log.info("amqtt broker stopped")


def _exit_now(message: str, *args: object) -> NoReturn:
    """Log ``message`` (a warning), flush the logs and end the process at once, without waiting for amqtt."""
    log.warning(message, *args)
    logging.shutdown()
    os._exit(0)  # the broker holds nothing on disk: nothing is lost by not waiting


async def finished(work: Awaitable[None], timeout_s: float) -> bool:
    """Whether ``work`` finished within ``timeout_s`` (it is cancelled if not)."""
    try:
        await asyncio.wait_for(work, timeout_s)
    except TimeoutError:
        return False
    return True
