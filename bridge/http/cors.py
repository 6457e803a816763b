"""CORS for the origins in ``FLEET_CORS_ORIGINS`` (none by default: then no CORS header is ever sent).

An ``after_request`` hook, so errors (JSON, from ``bridge.http.app``'s handlers) carry the headers too and a browser
script can read them. A preflight (``OPTIONS`` with ``Access-Control-Request-Method``) is answered on Flask's automatic
``OPTIONS`` response: the methods the path serves, the request headers a client of this API sends, and how long a
browser may cache the answer. No credentials: the API never needs cookies across origins (``?stream=`` does what the
``stream_id`` cookie does).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from flask import Flask, Response, request

ANY: Final = "*"
ALLOW_HEADERS: Final = "Content-Type, Last-Event-ID"  # a JSON setup; an EventSource resuming
EXPOSE_HEADERS: Final = "Retry-After"  # /stream_qstats' 503 says when to ask again
MAX_AGE_S: Final = 600
_NOT_ANNOUNCED: Final = frozenset({"HEAD", "OPTIONS"})


class Cors:
    """The allowed origins, compared as browsers send them (scheme://host[:port], case-insensitive)."""

    def __init__(self, origins: Iterable[str]) -> None:
        self.origins = frozenset(origin.lower() for origin in origins)

    def allow_origin(self, origin: str | None) -> str | None:
        """The Access-Control-Allow-Origin value for ``origin``, or None if it is not allowed."""
        if not origin:
            return None
        if ANY in self.origins:
            return ANY
        return origin if origin.lower() in self.origins else None

    def apply(self, response: Response) -> Response:
        """Add the CORS headers the current request earns to ``response``."""
        response.vary.add("Origin")  # the answer depends on Origin: a cache must not hand it to another one
        allowed = self.allow_origin(request.headers.get("Origin"))
        if allowed is None:
            return response
        response.headers["Access-Control-Allow-Origin"] = allowed
        if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
            response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
            return response
        methods = sorted(m for m in response.allow if m.upper() not in _NOT_ANNOUNCED)
        if methods:  # a preflight for a path this app serves
            response.headers["Access-Control-Allow-Methods"] = ", ".join(methods)
            response.headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
            response.headers["Access-Control-Max-Age"] = str(MAX_AGE_S)
        return response


def init_app(app: Flask, origins: Iterable[str]) -> None:
    """Answer CORS requests from ``origins`` (``*`` for any); with no origins, register nothing at all."""
    cors = Cors(origins)
    if cors.origins:
        app.after_request(cors.apply)
