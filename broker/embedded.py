"""The embedded amqtt broker, with one correction to amqtt 0.12's retained-message delivery.

amqtt 0.12 bug: when any client connects, ``Broker._handle_client_session`` sends it the retained messages matching
*every* subscription filter held by *any* client in the broker (``for topic in self._subscriptions``), not only its
own. With the bridge subscribed to ``meters/+/status``, a new ``mosquitto_sub -t 'meters/+/reading'`` first received
the meters' retained ``online`` messages. ``FleetBroker`` delivers retained messages for a filter only to a session that
holds that subscription; the SUBSCRIBE path (subscription added, then retained sent) is unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any

from amqtt.broker import Broker

from broker.amqtt_config import amqtt_config

log = logging.getLogger("broker")

SHUTDOWN_GRACE_S = 1.0


class FleetBroker(Broker):  # type: ignore[misc]
    """amqtt's Broker, sending retained messages only to sessions subscribed to the filter."""

    async def _publish_retained_messages_for_subscription(self, subscription: tuple[str, int], session: Any) -> None:
        topic_filter = subscription[0]
        holders = self._subscriptions.get(topic_filter, [])
        if any(held.client_id == session.client_id for held, _ in holders):
            await super()._publish_retained_messages_for_subscription(subscription, session)


async def serve(host: str, port: int) -> None:
    """Run the broker on ``host:port`` until SIGINT/SIGTERM, then shut it down cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    broker = FleetBroker(amqtt_config(host, port))
    await broker.start()
    log.info("amqtt broker listening on mqtt://%s:%d", host, port)
    await stop.wait()
    # Clients stopped by the same signal (make up, compose) still publish their clean "offline": give them a moment.
    stop.clear()
    log.info("stopping amqtt broker in %.1f s (a second signal stops it now)", SHUTDOWN_GRACE_S)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), SHUTDOWN_GRACE_S)
    await broker.shutdown()
    log.info("amqtt broker stopped")
