"""The way up of a client's connection: a non-blocking TCP socket, then TLS, for the fleet's selector loop (I/O shell).

``Link`` is the part of ``config.mqtt.connection.MqttConnection`` that never blocks the loop that drives every meter:
a non-blocking socket whose TCP connect completes when the selector finds it writable (``want_write`` is true
meanwhile), then the TLS handshake, retried on readiness (``SSLWantReadError``/``SSLWantWriteError``), then the
connection's CONNECT (``_send_connect``). TCP and TLS must be done within ``CONNECT_TIMEOUT_S`` (``_connect_deadline``,
from the connection's ``misc``), else the attempt is lost like a dropped connection (``_lost``). Host names other than
numeric addresses are resolved once per host and port and cached (``resolve``): ``getaddrinfo`` blocks, so the
publisher resolves every broker at start-up, before the loop runs.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import ssl
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Final

CONNECT_TIMEOUT_S: Final = 5.0

# Where a connection is on its way up; after CONNECT it waits for CONNACK (``connected``).
TCP: Final = "tcp"  # the non-blocking TCP connect is in progress: writable when done (or failed)
TLS: Final = "tls"  # the TLS handshake is in progress
MQTT: Final = "mqtt"  # CONNECT sent (or sending)
_IN_PROGRESS: Final = (0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY)

_resolved: dict[tuple[str, int], tuple[socket.AddressFamily, tuple[str, int] | tuple[str, int, int, int]]] = {}


def resolve(host: str, port: int) -> tuple[socket.AddressFamily, tuple[str, int] | tuple[str, int, int, int]]:
    """The address family and socket address of ``host:port``: at once for a numeric address; a name is looked up
    once with ``getaddrinfo`` (which blocks: call this at start-up, not in the loop) and cached for the process."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return (socket.AF_INET6, (host, port, 0, 0)) if ip.version == 6 else (socket.AF_INET, (host, port))
    cached = _resolved.get((host, port))
    if cached is None:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        if not infos:  # pragma: no cover - getaddrinfo raises rather than answer nothing
            raise OSError(f"no address for {host}")
        family, _, _, _, address = infos[0]
        cached = _resolved[(host, port)] = (family, (str(address[0]), int(address[1]), *address[2:]))
    return cached


class Link(ABC):
    """A socket on its way up (TCP, then TLS when ``tls`` is set); ``MqttConnection`` sets ``tls``, ``clock`` and
    ``keepalive_s`` in its ``__init__``, sends CONNECT when the way up is done and says what a lost connection does."""

    tls: ssl.SSLContext | None
    clock: Callable[[], float]
    keepalive_s: int

    def __init__(self) -> None:
        self._sock: socket.socket | None = None
        self._state = MQTT
        self._host = ""
        self._deadline = 0.0  # TCP and TLS must be done by then (clock seconds)
        self._handshake_wants_write = False
        self._out = bytearray()

    @abstractmethod
    def _send_connect(self) -> None:
        """Send CONNECT: TCP (and TLS) is done."""

    @abstractmethod
    def _lost(self, reason: str) -> None:
        """Close the socket, and say why."""

    def socket(self) -> socket.socket | None:
        """The open socket (to register with a selector), or None."""
        return self._sock

    def want_write(self) -> bool:
        """Bytes are waiting for the socket to take them, or the TCP connect (or the TLS handshake) waits to be
        writable."""
        return bool(self._out) or self._state == TCP or (self._state == TLS and self._handshake_wants_write)

    @property
    def connecting(self) -> bool:
        """The TCP connect or the TLS handshake is in progress (CONNECT not sent yet)."""
        return self._sock is not None and self._state != MQTT

    def connect(self, host: str, port: int, keepalive_s: int) -> None:
        """Start the TCP connect (without waiting: the loop drives it, then TLS, then CONNECT; CONNACK comes later in
        ``read``). Raises ``OSError`` if it fails at once (refused on loopback, no address)."""
        if self._sock is not None:
            return
        self.keepalive_s = keepalive_s
        family, address = resolve(host, port)
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            code = sock.connect_ex(address)
            if code not in _IN_PROGRESS:
                raise OSError(code, os.strerror(code))
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._host = host
        self._state = TCP
        self._out.clear()
        self._deadline = self.clock() + CONNECT_TIMEOUT_S
        if code == 0:
            self._progress()

    def _progress(self) -> None:
        """Take the connection a step further on readiness: TCP done, then the TLS handshake, then CONNECT."""
        sock = self._sock
        if sock is None:
            return
        if self._state == TCP:
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code in (errno.EINPROGRESS, errno.EALREADY):
                return
            if code != 0:
                self._lost(f"connect failed: {os.strerror(code)}")
                return
            try:
                sock.getpeername()  # writable without an error, yet not connected: not done
            except OSError:
                return
            if self.tls is None:
                self._send_connect()
                return
            try:
                sock = self._sock = self.tls.wrap_socket(
                    sock, server_hostname=self._host, do_handshake_on_connect=False
                )
            except (ssl.SSLError, OSError, ValueError) as exc:
                self._lost(f"TLS failed: {exc}")
                return
            self._state = TLS
        if self._state == TLS:
            assert isinstance(sock, ssl.SSLSocket)
            try:
                sock.do_handshake()
            except ssl.SSLWantReadError:
                self._handshake_wants_write = False
                return
            except ssl.SSLWantWriteError:
                self._handshake_wants_write = True
                return
            except (ssl.SSLError, OSError, ValueError) as exc:
                self._lost(f"TLS handshake failed: {exc}")
                return
            self._send_connect()

    def _connect_deadline(self, now: float) -> None:
        """Lost when TCP and TLS are not done ``CONNECT_TIMEOUT_S`` after ``connect``."""
        if now >= self._deadline:
            self._lost(f"connect timed out after {CONNECT_TIMEOUT_S:g} s ({self._state} not done)")
