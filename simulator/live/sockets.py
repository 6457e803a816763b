"""The selector half of the fleet's loop (``simulator.live.publisher.FleetLoop``): socket events of the meters'
links and the outbox writer's wake-ups, the (re-)registration of only the sockets that did something, and the clean
disconnect at a stop.

A base class of ``FleetLoop``, not an object of its own: the loop's per-reading path marks a link as touched in
``self._touched`` directly, with no call and no further attribute hop.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import threading
from collections.abc import Callable
from typing import Final

from config.topics import STATUS_QOS, status_topic
from config.wire import OFFLINE
from simulator.live.link import MeterLink
from simulator.live.outbox import OutboxWriter

log = logging.getLogger(__name__)

STOP_FLUSH_S: Final = 3.0  # wall seconds a stop waits for the offline statuses (and the last checkpoints)
SHOW_METERS: Final = 20  # meters named one by one in a log line: the stop line, simulator.commands' start-up lines


class SocketService:
    """Services the sockets of ``FleetLoop``'s links and its outbox writer's wake-up (state set by ``FleetLoop``)."""

    stop_event: threading.Event
    wall: Callable[[], float]
    _selector: selectors.BaseSelector
    _registered: dict[str, tuple[socket.socket, int]]
    _touched: dict[str, MeterLink]
    _writer: OutboxWriter | None
    links: dict[str, MeterLink]

    def _check_writer(self) -> None:
        """Stop the loop if the outbox could not be written (nothing may be published past what it holds)."""
        if self._writer is not None and self._writer.error is not None:
            raise RuntimeError("the outbox could not be written") from self._writer.error

    def _service(self, until: float) -> None:
        """Handle socket events until wall time ``until`` (PUBACKs, commands, the outbox writer's commits), publishing
        committed readings as they come; the rest of a pass (stepping, connects, backlog) waits for ``until``. A pass
        per event would cost more than the event at 10,000 meters."""
        while True:
            self._sync_registrations()
            timeout = max(0.0, until - self.wall())
            if not self._registered and self._writer is None:
                self.stop_event.wait(timeout)
                return
            ready = self._selector.select(timeout)
            for key, events in ready:
                if key.data is None:  # the outbox writer committed something (the horizon may have moved)
                    if self._writer is not None:
                        self._writer.drain()
                    self._check_writer()
                    continue
                link: MeterLink = key.data
                self._touched[link.meter_id] = link
                if events & selectors.EVENT_READ:
                    link.client.read()
                if events & selectors.EVENT_WRITE:
                    link.client.write()
            if not ready or self.wall() >= until or self.stop_event.is_set():
                return

    def _sync_registrations(self) -> None:
        """(Re-)register the sockets of the links that did something since the last call (only those can change).
        Stale sockets go first: a closed socket's descriptor number may already be another meter's new socket."""
        touched, self._touched = self._touched, {}
        for meter_id, link in touched.items():
            old = self._registered.get(meter_id)
            if old is not None and link.client.socket() is not old[0]:
                self._unregister(meter_id)
        for meter_id, link in touched.items():
            sock = link.client.socket()
            if sock is None:
                continue
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if link.client.want_write() else 0)
            old = self._registered.get(meter_id)
            if old is None:
                self._evict(sock)
                self._selector.register(sock, events, link)
                self._registered[meter_id] = (sock, events)
            elif old[1] != events:
                self._selector.modify(sock, events, link)
                self._registered[meter_id] = (sock, events)

    def _unregister(self, meter_id: str) -> None:
        sock, _ = self._registered.pop(meter_id)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self._selector.unregister(sock)

    def _evict(self, sock: socket.socket) -> None:
        """Drop whatever the selector still holds under ``sock``'s descriptor: the closed socket of a meter not
        touched since (registering on top of it raised KeyError and ended the whole fleet's loop)."""
        try:
            key = self._selector.get_key(sock)
        except KeyError:
            return
        stale = key.data
        if isinstance(stale, MeterLink) and self._registered.get(stale.meter_id, (None,))[0] is key.fileobj:
            self._unregister(stale.meter_id)
        else:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._selector.unregister(key.fileobj)

    def _shutdown(self) -> None:
        """Publish ``offline`` (retained) for every connected meter, flush, and disconnect."""
        mids = []
        for link in self.links.values():
            if link.connected:
                mid = link.client.publish(status_topic(link.meter_id), OFFLINE.encode(), STATUS_QOS, retain=True)
                if mid is not None:
                    mids.append((link, mid))
        deadline = self.wall() + STOP_FLUSH_S
        while mids and not all(link.client.is_acked(mid) for link, mid in mids) and self.wall() < deadline:
            self._service(self.wall() + 0.05)
        for link in self.links.values():
            link.quiet = True
            link.on_lost = None
            link.client.disconnect()
        total = sum(link.published for link in self.links.values())
        shown = list(self.links.items())[:SHOW_METERS]
        log.info(
            "stopped; published %d readings: %s%s",
            total,
            ", ".join(f"{meter_id}={link.published}" for meter_id, link in shown),
            ", ..." if len(self.links) > len(shown) else "",
        )
