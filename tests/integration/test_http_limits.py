"""The bridge's HTTP edge against a real ``python -m bridge`` (gunicorn + our gevent worker), over raw sockets: every
refusal is a JSON 4xx the client can read (never HTML, never a connection reset), a body past the drain bound closes
the connection, and setups are rate-limited per peer address. No broker: the bridge serves HTTP while it retries.

Raw sockets because what is tested is below Flask: gunicorn's own answers (request line, header limits) and what the
server does with request bytes it has not read (Flask's test client has no socket to reset).
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bridge.http.server import LIMIT_REQUEST_FIELD_SIZE, LIMIT_REQUEST_FIELDS, LIMIT_REQUEST_LINE
from bridge.http.worker import DRAIN_MAX_BYTES
from tests.support.paths import README
from tests.support.procs import LOOPBACK, Proc, free_port, start_bridge

pytestmark = pytest.mark.integration

WAIT_S = 30.0  # generous: the machine is shared
SETUP = b'{"household": "A", "interval": 5}'


def _bridge(log_dir: Path) -> Proc:
    return start_bridge(free_port(), log_dir, wait_mqtt=False)  # nothing listens on that broker port


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A bridge for this module's tests (no setups are spent here but a few: the rate limit has its own bridge)."""
    bridge = _bridge(tmp_path_factory.mktemp("http-limits"))
    try:
        yield bridge.port or 0
    finally:
        code = bridge.stop()
        assert code == 0, f"bridge exited with {code}:\n{bridge.log()[-3000:]}"


@dataclass
class Answer:
    """One HTTP response as read off the socket."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, object]:
        doc = json.loads(self.body)
        assert isinstance(doc, dict)
        return doc


def read_answer(sock: socket.socket) -> Answer:
    """Read one response (headers, then Content-Length bytes); an OSError (a reset) fails the test."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a complete response head: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed inside the response body"
        body += chunk
    return Answer(int(status_line.split()[1]), headers, body[:length])


def exchange(port: int, request: bytes) -> Answer:
    """Send ``request`` as is on a new connection and read the answer."""
    with socket.create_connection((LOOPBACK, port), timeout=WAIT_S) as sock:
        sock.sendall(request)
        return read_answer(sock)


def assert_json_error(answer: Answer, status: int) -> str:
    assert answer.status == status, answer
    assert answer.headers["content-type"].split(";")[0] == "application/json", answer
    message = answer.json()["error"]
    assert isinstance(message, str)
    assert message
    return message


def get(path: str, *headers: str, version: str = "1.1") -> bytes:
    lines = [f"GET {path} HTTP/{version}", "Host: bridge", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


# --- gunicorn's own refusals ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        pytest.param(get("/stream_qstats?household=" + "A" * LIMIT_REQUEST_LINE), 414, id="request-line-too-long"),
        pytest.param(get("/healthz", "X-Big: " + "b" * LIMIT_REQUEST_FIELD_SIZE), 431, id="header-too-large"),
        pytest.param(
            get("/healthz", *(f"X-H{i}: {i}" for i in range(LIMIT_REQUEST_FIELDS + 1))), 431, id="too-many-headers"
        ),
        pytest.param(b"GARBAGE\r\n\r\n", 400, id="bad-request-line"),
        pytest.param(get("/healthz", "Bad Header: 1"), 400, id="bad-header-name"),
        pytest.param(b"GET /healthz HTTP/9.9\r\nHost: bridge\r\n\r\n", 400, id="bad-http-version"),
    ],
)
def test_gunicorns_refusals_are_json(port: int, request_bytes: bytes, status: int) -> None:
    """They were HTML pages (and the long request line a connection reset: the server closed with it unread)."""
    answer = exchange(port, request_bytes)
    assert_json_error(answer, status)
    assert answer.headers["connection"] == "close"
    assert b"<html" not in answer.body.lower()


def test_limits_are_what_the_readme_says() -> None:
    assert (LIMIT_REQUEST_LINE, LIMIT_REQUEST_FIELDS, LIMIT_REQUEST_FIELD_SIZE) == (4094, 100, 8190)
    readme = README.read_text()
    for value in ("4094", "100 header", "8190", "16 KiB", "16 MiB"):
        assert value in readme, value


# --- What Flask answered by itself ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/static//x", "/static//dashboard.css", "/healthz/", "/static/"])
def test_no_redirect_pages(port: int, path: str) -> None:
    """``/static//x`` was an HTML 308 (werkzeug merged the slashes)."""
    assert_json_error(exchange(port, get(path, "Connection: close")), 404)


def test_options_is_json(port: int) -> None:
    """Flask's automatic OPTIONS was 200 with an empty text/html body."""
    answer = exchange(port, (b"OPTIONS /healthz HTTP/1.1\r\nHost: bridge\r\nConnection: close\r\n\r\n"))
    assert answer.status == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {"allow": ["GET", "HEAD", "OPTIONS"]}


# --- Bodies too large ----------------------------------------------------------------------------------------------


def post_head(length: int, *headers: str, version: str = "1.1") -> bytes:
    lines = [f"POST /stream_setup HTTP/{version}", "Host: bridge", "Content-Type: application/json", *headers]
    return ("\r\n".join([*lines, f"Content-Length: {length}"]) + "\r\n\r\n").encode("latin-1")


@pytest.mark.parametrize(
    ("headers", "version"),
    [
        pytest.param(("Connection: close",), "1.1", id="connection-close"),
        pytest.param((), "1.0", id="http-1.0"),
        pytest.param((), "1.1", id="keep-alive"),
    ],
)
def test_a_10_mb_body_gets_a_json_413_not_a_reset(port: int, headers: tuple[str, ...], version: str) -> None:
    """The whole body is sent (the server reads and discards it) and the answer is read: the server used to close
    with the body unread when the connection was not kept alive, and the client's send died of a reset."""
    body = b"x" * 10_000_000
    with socket.create_connection((LOOPBACK, port), timeout=WAIT_S) as sock:
        sock.sendall(post_head(len(body), *headers, version=version) + body)
        answer = read_answer(sock)
        assert_json_error(answer, 413)
        if not headers and version == "1.1":  # kept alive: the connection is clean for the next request
            sock.sendall(get("/healthz"))
            assert read_answer(sock).status == 200


@dataclass
class Sender:
    """Sends ``total`` bytes in a thread, stopping at the first error; how far it got."""

    sock: socket.socket
    total: int
    sent: int = 0
    error: OSError | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        chunk = b"x" * 65536
        try:
            while self.sent < self.total:
                self.sent += self.sock.send(chunk[: self.total - self.sent])
        except OSError as exc:
            self.error = exc
        finally:
            self.done.set()


def test_a_body_past_the_drain_bound_closes_the_connection(port: int) -> None:
    """A 413, then the server stops reading: it discards at most DRAIN_MAX_BYTES, not the 64 MiB announced (a
    kept-alive connection used to be drained whatever the size)."""
    total = 4 * DRAIN_MAX_BYTES
    with socket.create_connection((LOOPBACK, port), timeout=WAIT_S) as sock:
        sock.sendall(post_head(total))
        sender = Sender(sock, total)
        thread = threading.Thread(target=sender.run, daemon=True)
        thread.start()
        try:
            assert_json_error(read_answer(sock), 413)  # written before the drain: readable while the body still comes
        finally:
            assert sender.done.wait(WAIT_S), "the server kept reading"
            thread.join(WAIT_S)
        assert sender.error is not None
        assert sender.sent < total
    assert exchange(port, get("/healthz", "Connection: close")).status == 200


def test_a_small_body_on_a_get_is_discarded(port: int) -> None:
    """A body nobody reads (a GET with one), then Connection: close: the answer arrives, then a clean end."""
    body = b"y" * 300_000
    head = get("/healthz", "Connection: close", f"Content-Length: {len(body)}")
    with socket.create_connection((LOOPBACK, port), timeout=WAIT_S) as sock:
        sock.sendall(head + body)
        assert read_answer(sock).status == 200
        assert sock.recv(1) == b""  # a FIN, not a reset


# --- Setups per address --------------------------------------------------------------------------------------------


def test_setups_are_rate_limited_per_peer_address(tmp_path: Path) -> None:
    """A flood of setups from one address gets JSON 429 with Retry-After (the eviction attack needed 10,050), and a
    made-up X-Forwarded-For does not make a new address."""
    bridge = _bridge(tmp_path)
    try:
        conn = http.client.HTTPConnection(LOOPBACK, bridge.port, timeout=WAIT_S)
        statuses: list[int] = []
        response = None
        for i in range(500):  # the burst is 60; a setup costs far more than the 0.1 s that earns one
            headers = {"Content-Type": "application/json", "X-Forwarded-For": f"198.51.100.{i % 250}"}
            conn.request("POST", "/stream_setup", body=SETUP, headers=headers)
            response = conn.getresponse()
            body = response.read()
            statuses.append(response.status)
            if response.status != 200:
                break
        conn.close()
        assert response is not None
        assert statuses[-1] == 429, statuses
        assert len(statuses) > 60
        assert response.getheader("Content-Type") == "application/json"
        assert json.loads(body)["error"].startswith("Too many stream setups")
        assert (response.getheader("Retry-After") or "").isdigit()
        assert int(response.getheader("Retry-After") or "0") >= 1
    finally:
        assert bridge.stop() == 0, bridge.log()[-3000:]
