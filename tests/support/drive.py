"""Driving one meter connection (``config.mqtt.connection.MqttConnection``) on readiness in a unit test, as the fleet's
selector loop does: no thread, no sleep, bounded."""

from __future__ import annotations

import selectors
import time
from collections.abc import Callable

from config.mqtt.connection import MqttConnection

WAIT_S = 10.0


def service(
    conn: MqttConnection, done: Callable[[], bool], seconds: float = WAIT_S, *, each: Callable[[], None] | None = None
) -> bool:
    """Drive ``conn`` until ``done()`` (True), or until ``seconds`` pass or its socket is gone (then ``done()``);
    ``each`` runs before every step (a scripted peer reading its side)."""
    deadline = time.monotonic() + seconds
    with selectors.DefaultSelector() as selector:
        while not done():
            if each is not None:
                each()
            left = deadline - time.monotonic()
            sock = conn.socket()
            if left <= 0 or sock is None:
                return done()
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if conn.want_write() else 0)
            selector.register(sock, events)
            for _, ready in selector.select(min(left, 0.02)):
                if ready & selectors.EVENT_READ:
                    conn.read()
                if ready & selectors.EVENT_WRITE:
                    conn.write()
            selector.unregister(sock)
    return True
