"""gunicorn's gevent worker with two changes a client can see: gunicorn's own errors are JSON, and what is left of a
request body is read and discarded (bounded) before the connection closes, so the client reads its answer instead of
a connection reset.

gunicorn answers a request it cannot parse (bad request line, URL or headers over ``bridge.http.server``'s limits)
itself, in ``Worker.handle_error``, with an HTML page. ``JsonGeventWorker.handle_error`` lets gunicorn do everything it
does (status, logging, access log) but write into a capture, then sends the same status as ``{"error": "..."}``.

A server that closes a connection while request bytes are still unread makes the kernel send a reset, which can
destroy the answer before the client reads it (a 413 for a 10 MB body arrived as "connection reset by peer"). So after
each response the rest of the body is discarded, at most ``DRAIN_MAX_BYTES`` within ``DRAIN_S``; before a close the
write side is shut first (the client sees the end of the answer at once). Past either bound the connection is closed.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import time
from typing import Any, Final

from gevent.server import StreamServer
from gunicorn.workers.ggevent import GeventWorker

from bridge.http.validation import INTERNAL

DRAIN_MAX_BYTES: Final = 16 * 1024 * 1024  # past this much unread body the connection is closed, not drained
DRAIN_S: Final = 5.0  # as gunicorn's keep-alive wait: a body trickling in slower than this is not waited for
MAX_MESSAGE_CHARS: Final = 200  # gunicorn's messages quote the request line: keep the echo short
_CHUNK: Final = 64 * 1024
# Connections accepted per pass of the event loop. gunicorn leaves gevent's 100 with one worker: in a storm of SSE
# connects (10,000 at once) each pass queued up to 100 new requests (0.5 ms of CPU each) behind everything already
# waiting to run, so the queue grew to thousands and a stream woken by its window, like the MQTT thread's next turn,
# waited behind all of them: windows 3-7 s late. One a pass keeps the queue short: the accept rate follows what the
# worker has to spare, and the clients still waiting sit in the listen backlog (docs/performance.md, issue #13).
ACCEPT_PER_PASS: Final = 1
_STATUS_LINE: Final = re.compile(rb"HTTP/1\.[01] ([1-5][0-9][0-9]) ([^\r\n]*)\r\n")


def parse_status(response: bytes) -> tuple[int, str] | None:
    """The status code and reason of a raw HTTP/1.x response, or None if it does not start with a status line."""
    match = _STATUS_LINE.match(response)
    if match is None:
        return None
    return int(match.group(1)), match.group(2).decode("latin-1").strip()


def error_message(status: int, reason: str, exc: BaseException) -> str:
    """What ``{"error": ...}`` says: the reason and gunicorn's detail, shortened; never internals of a 5xx."""
    if status >= 500:
        return INTERNAL
    detail = str(exc).strip()
    text = f"{reason}: {detail}" if detail else reason
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 3] + "..."


def json_error_response(status: int, reason: str, message: str) -> bytes:
    """A complete ``Connection: close`` HTTP/1.1 response with the JSON error body."""
    body = json.dumps({"error": message}).encode("ascii")  # ASCII escapes: a client's bytes go back as \\u escapes
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
    )
    return head.encode("latin-1") + body


class _Capture:
    """Stands in for the client socket while gunicorn writes its HTML error page: keeps the bytes, sends nothing."""

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.data = bytearray()

    def gettimeout(self) -> float:
        """Non-blocking, so gunicorn's ``write_nonblock`` writes straight to ``sendall``."""
        return 0.0

    def setblocking(self, flag: bool) -> None:
        """Nothing to change: nothing is sent."""

    def sendall(self, data: bytes) -> None:
        """Keep ``data``."""
        self.data += data

    def send(self, data: bytes) -> int:
        """Keep ``data``."""
        self.data += data
        return len(data)

    def __getattr__(self, name: str) -> Any:  # anything else gunicorn asks of the socket (its address, its fd)
        return getattr(self.sock, name)


def drain_body(body: Any, sock: Any, max_bytes: int = DRAIN_MAX_BYTES, timeout_s: float = DRAIN_S) -> bool:
    """Read and discard the rest of a request ``body`` (gunicorn's reader over ``sock``); True if it all came within
    ``max_bytes`` and ``timeout_s``, False if the connection must close (bound reached, timeout, broken body)."""
    deadline = time.monotonic() + timeout_s
    prior = sock.gettimeout()
    drained = 0
    try:
        while drained <= max_bytes:
            remaining_s = deadline - time.monotonic()
            if remaining_s <= 0:
                return False
            sock.settimeout(remaining_s)
            data = body.read(_CHUNK)
            if not data:
                return True
            drained += len(data)
        return False
    except Exception:  # a timeout, a reset, a malformed chunk: the connection is done either way
        return False
    finally:
        with contextlib.suppress(OSError):
            sock.settimeout(prior)


def linger(sock: Any, max_bytes: int = DRAIN_MAX_BYTES, timeout_s: float = DRAIN_S) -> None:
    """Before a close after a request gunicorn could not parse: shut the write side (the client sees the end of the
    answer), then read and discard what the client still sends until it closes, ``max_bytes`` or ``timeout_s``."""
    if not _shut_write(sock):
        return
    deadline = time.monotonic() + timeout_s
    drained = 0
    try:
        while drained <= max_bytes:
            remaining_s = deadline - time.monotonic()
            if remaining_s <= 0:
                return
            sock.settimeout(remaining_s)
            data = sock.recv(_CHUNK)
            if not data:
                return
            drained += len(data)
    except OSError:  # includes the timeout
        return


def _shut_write(sock: Any) -> bool:
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        return False
    return True


class JsonGeventWorker(GeventWorker):  # type: ignore[misc]
    """gunicorn's ``gevent`` worker; JSON errors of its own, and no reset while a request body is still coming."""

    def run(self) -> None:
        """gunicorn's loop, accepting ``ACCEPT_PER_PASS`` connections per pass (gunicorn builds its StreamServer in
        ``run``, with no way in: the class attribute, in this worker process, is the setting)."""
        StreamServer.max_accept = ACCEPT_PER_PASS
        super().run()

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        """gunicorn's handling (status, logs) with its HTML page replaced by ``{"error": ...}``."""
        capture = _Capture(client)
        super().handle_error(req, capture, addr, exc)
        status, reason = parse_status(bytes(capture.data)) or (500, "Internal Server Error")
        try:
            client.settimeout(DRAIN_S)  # a client that reads nothing cannot hold this greenlet
            client.sendall(json_error_response(status, reason, error_message(status, reason, exc)))
        except Exception:  # as gunicorn: the client may be gone already
            self.log.debug("Failed to send error message.")
            return
        if status < 500:  # a client's bad request: let it read the answer (a 5xx here is a worker shutting down)
            linger(client)

    def handle_request(self, listener_name: Any, req: Any, sock: Any, addr: Any) -> Any:
        """gunicorn's, then the unread rest of the body discarded (bounded): past the bound, the connection closes."""
        try:
            handled = super().handle_request(listener_name, req, sock, addr)
        except StopIteration:  # the connection closes after this answer: end it, then take what is still coming
            _shut_write(sock)
            drain_body(req.body, sock)
            raise
        # (GeventWorker's handle_request returns None, not AsyncWorker's "handled": nothing here takes a socket over)
        if not drain_body(req.body, sock):
            raise StopIteration()  # gunicorn closes the connection (as after Connection: close)
        return handled
