"""A real paho subscriber for tests: collects messages in a queue, waits with timeouts.

It logs in as ``observer`` (read-only ``meters/#`` and ``homeassistant/#``) with the test run's secret unless told
another user, secret or none (``user=None``: anonymous).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from config.credentials import OBSERVER_USER
from config.topics import BATCH_SUBSCRIPTION, READING_SUBSCRIPTION
from config.wire import Reading, decode_batch, decode_reading
from tests.support.procs import login


@dataclass(frozen=True)
class Msg:
    """A received message, detached from paho."""

    topic: str
    payload: bytes
    retain: bool


class Collector:
    """Subscribes to ``topics`` and queues every message."""

    def __init__(
        self,
        port: int,
        topics: list[str],
        host: str = "127.0.0.1",
        user: str | None = OBSERVER_USER,
        secret: Path | None = None,
    ) -> None:
        self.messages: queue.Queue[Msg] = queue.Queue()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        if user is not None:
            auth = login(user, secret)
            self.client.username_pw_set(auth["username"], auth["password"])
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe([(t, 1) for t in topics])
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self._subscribed.set()
        self.client.on_message = lambda c, u, m: self.messages.put(Msg(m.topic, bytes(m.payload), bool(m.retain)))
        self.client.connect(host, port, 30)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise TimeoutError("subscription not acknowledged within 10 s")

    def wait_for(self, predicate: Callable[[Msg], bool], timeout: float) -> Msg:
        """The first queued message matching ``predicate`` (others are dropped); TimeoutError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no matching message")
            try:
                msg = self.messages.get(timeout=remaining)
            except queue.Empty as exc:
                raise TimeoutError("no matching message") from exc
            if predicate(msg):
                return msg

    def close(self) -> None:
        """Disconnect, stop the network thread and close every socket."""
        self.client.disconnect()
        self.client.loop_stop()
        # paho 2.2's loop_stop() leaves its wake-up socket pair open until garbage collection, which then warns.
        self.client._reset_sockets()


@contextmanager
def collecting(
    port: int, topics: list[str], user: str | None = OBSERVER_USER, secret: Path | None = None
) -> Iterator[Collector]:
    """A Collector (logged in as ``user``) for the duration of a ``with`` block."""
    collector = Collector(port, topics, user=user, secret=secret)
    try:
        yield collector
    finally:
        collector.close()


READING_TOPICS: Final = [READING_SUBSCRIPTION, BATCH_SUBSCRIPTION]  # a meter's readings: one a message, or batches


def readings_in(message: Msg) -> list[Reading]:
    """The readings a message carries: one on ``meters/<id>/reading``, a batch on ``meters/<id>/readings`` (a meter
    catching up or sending its backlog); every element must be valid."""
    if message.topic.endswith("/readings"):
        readings, errors = decode_batch(message.topic, message.payload)
        assert errors == [], errors
        return readings
    return [decode_reading(message.topic, message.payload)]
