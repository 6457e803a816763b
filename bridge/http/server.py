"""Serving the app with gunicorn's gevent worker (one worker: history and sessions live in its memory).

The worker is ``bridge.http.worker.JsonGeventWorker``: gunicorn's ``gevent`` worker whose own errors (a request over the
limits below, a malformed request line or header) are JSON, and which discards an unread request body (bounded)
rather than resetting the connection under the client's answer.
"""

from __future__ import annotations

import resource
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from bridge.http.app import create_app
from bridge.http.state import STATE
from bridge.runtime import BridgeRuntime
from config.settings import Settings

GRACEFUL_TIMEOUT_S = 3  # open SSE streams never end by themselves; do not hold a shutdown for long
MAX_CONNECTIONS = 20_000  # HTTP connections at most (SSE streams stay open): about 0.5 GB at 23 KB a stream
FD_MARGIN = 100  # descriptors besides the clients': SQLite (database, WAL, shm, two connections), MQTT, logs, the hub
WORKER_CLASS = "bridge.http.worker.JsonGeventWorker"  # gunicorn loads it in the worker, by dotted path
# gunicorn's request limits, set here so they are ours (these are its defaults). Past them: JSON 414 (request line),
# 431 (header count or size). A request line holds every query this API takes with room to spare; a header field of
# 8 KiB leaves room for a browser's cookies of other apps on the same host (localhost).
LIMIT_REQUEST_LINE = 4094
LIMIT_REQUEST_FIELDS = 100
LIMIT_REQUEST_FIELD_SIZE = 8190


def worker_connections(fd_limit: int) -> int:
    """gunicorn's ``worker_connections`` for a process that may open ``fd_limit`` files: as many connections as its
    descriptors hold besides the bridge's own, at most ``MAX_CONNECTIONS``, at least 1."""
    if fd_limit == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(1, min(MAX_CONNECTIONS, fd_limit - FD_MARGIN))


def _worker_exit(server: Any, worker: Any) -> None:
    """Stop the worker's runtime (in reverse order: the bridge's ``offline`` goes out, the store commits)."""
    app = getattr(worker, "wsgi", None)
    if not isinstance(app, Flask):  # the worker never built its app: ``BridgeServer.load`` cleaned up after itself
        return
    STATE.get(app).runtime.stop()


class BridgeServer(BaseApplication):  # type: ignore[misc]
    """gunicorn, configured in code; the app is built in the worker, after gevent has patched the standard library."""

    def __init__(self, settings: Settings, host: str, port: int, fd_limit: int = resource.RLIM_INFINITY) -> None:
        self.settings = settings
        # The worker inherits the master's descriptor limit (bridge.__main__ raised it before gunicorn forks).
        self.connections = worker_connections(fd_limit)
        self.bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        super().__init__()

    def load_config(self) -> None:
        """Set gunicorn's options."""
        options: dict[str, Any] = {
            "bind": [self.bind],
            "workers": 1,
            "worker_class": WORKER_CLASS,
            "limit_request_line": LIMIT_REQUEST_LINE,
            "limit_request_fields": LIMIT_REQUEST_FIELDS,
            "limit_request_field_size": LIMIT_REQUEST_FIELD_SIZE,
            "worker_connections": self.connections,
            "graceful_timeout": GRACEFUL_TIMEOUT_S,
            "timeout": 30,
            "keepalive": 5,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": self.settings.log_level.lower(),
            "worker_exit": _worker_exit,
            "proc_name": "fleet-bridge",
        }
        if "control_socket_disable" in self.cfg.settings:  # gunicorn >= 25.1
            # One control socket per user ($HOME/.gunicorn/gunicorn.ctl): a second bridge on the host would take over
            # the first one's. Nothing here uses gunicornc.
            options["control_socket_disable"] = True
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        """Build the runtime and its app and start the runtime (in the worker process: its threads are the
        worker's; ``worker_exit`` stops it)."""
        runtime = BridgeRuntime.for_settings(self.settings)
        try:
            app = create_app(self.settings, runtime)
        except BaseException:
            runtime.stop()  # the store is open already
            raise
        runtime.start()  # a part that fails stops those started before it and raises: the worker does not boot
        return app
