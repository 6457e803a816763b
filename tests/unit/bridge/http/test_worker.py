"""bridge.http.worker's pure parts: gunicorn's error page captured and turned into a JSON response.

The worker itself is exercised over real sockets against a real bridge (tests/integration/test_http_limits.py).
"""

from __future__ import annotations

import json
import socket

import pytest
from gunicorn import util
from gunicorn.http.errors import InvalidRequestLine, LimitRequestHeaders, LimitRequestLine

from bridge.http.worker import (
    INTERNAL,
    MAX_MESSAGE_CHARS,
    _Capture,
    drain_body,
    error_message,
    json_error_response,
    parse_status,
)


def split(response: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return status, headers, body


def test_the_capture_takes_what_gunicorn_writes() -> None:
    """gunicorn's own ``write_error`` into the capture: nothing reaches the socket, its status line is parsed."""
    left, right = socket.socketpair()
    with left, right:
        capture = _Capture(left)
        util.write_error(capture, 431, "Request Header Fields Too Large", "too many")
        assert parse_status(bytes(capture.data)) == (431, "Request Header Fields Too Large")
        assert b"<html>" in capture.data
        right.setblocking(False)
        with pytest.raises(BlockingIOError):
            right.recv(1)  # nothing was sent
        assert capture.fileno() == left.fileno()  # anything else is the socket's


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"HTTP/1.1 414 URI Too Long\r\n", (414, "URI Too Long")),
        (b"HTTP/1.0 400 Bad Request\r\nConnection: close\r\n", (400, "Bad Request")),
        (b"", None),
        (b"<html>", None),
        (b"HTTP/1.1 99 Odd\r\n", None),
    ],
)
def test_parse_status(raw: bytes, expected: tuple[int, str] | None) -> None:
    assert parse_status(raw) == expected


def test_error_message() -> None:
    assert error_message(414, "URI Too Long", LimitRequestLine(8192, 4094)) == (
        "URI Too Long: Request Line is too large (8192 > 4094)"
    )
    assert error_message(431, "Request Header Fields Too Large", LimitRequestHeaders("")) == (
        "Request Header Fields Too Large"
    )
    long = error_message(400, "Bad Request", InvalidRequestLine("x" * 10_000))
    assert len(long) == MAX_MESSAGE_CHARS
    assert long.endswith("...")
    assert error_message(500, "Internal Server Error", RuntimeError("secret detail")) == INTERNAL


def test_json_error_response_is_complete_http() -> None:
    raw = json_error_response(400, "Bad Request", "Bad Request: 'GET /\x00\u00e9'")
    status, headers, body = split(raw)
    assert status == "HTTP/1.1 400 Bad Request"
    assert headers == {
        "connection": "close",
        "content-type": "application/json",
        "content-length": str(len(body)),
    }
    assert json.loads(body) == {"error": "Bad Request: 'GET /\x00\u00e9'"}
    assert body.isascii()


class Body:
    """A request body reader as gunicorn's: ``read(size)`` until ``b""``."""

    def __init__(self, size: int, broken: bool = False) -> None:
        self.left = size
        self.broken = broken
        self.read_bytes = 0

    def read(self, size: int) -> bytes:
        if self.broken:
            raise OSError("reset")
        n = min(size, self.left)
        self.left -= n
        self.read_bytes += n
        return b"x" * n


@pytest.mark.parametrize(
    ("size", "broken", "drained"),
    [(0, False, True), (5_000, False, True), (1_000_000, False, True), (1_000_001, False, False), (10, True, False)],
)
def test_drain_body_is_bounded(size: int, broken: bool, drained: bool) -> None:
    left, right = socket.socketpair()
    with left, right:
        body = Body(size, broken)
        assert drain_body(body, left, max_bytes=1_000_000, timeout_s=5.0) is drained
        assert body.read_bytes <= 1_000_000 + 64 * 1024
        assert left.gettimeout() is None  # the socket's timeout is put back
