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
import os
import signal
import warnings
from collections.abc import Callable
from typing import Any

from amqtt.broker import Broker

log = logging.getLogger("broker")

SHUTDOWN_GRACE_S = 1.0
LEFTOVER_WAIT_S = 2.0


class FleetBroker(Broker):  # type: ignore[misc]
    """amqtt's Broker, sending retained messages only to sessions subscribed to the filter."""

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
    await broker.shutdown()
    # amqtt 0.12 leaves tasks behind when clients connect during shutdown (reconnecting meters); some ignore one
    # cancellation, and asyncio.run() would wait for them forever. Cancel them, give them a moment, then go.
    current = asyncio.current_task()
    leftovers = [task for task in asyncio.all_tasks() if task is not current]
    for task in leftovers:
        task.cancel()
    if leftovers:
        _, pending = await asyncio.wait(leftovers, timeout=LEFTOVER_WAIT_S)
        if pending:
            log.warning("%d amqtt tasks did not stop; exiting anyway", len(pending))
            logging.shutdown()
            os._exit(0)  # the broker holds nothing on disk: nothing is lost by not waiting
    log.info("amqtt broker stopped")
