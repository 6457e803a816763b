"""Flask app factory: ``create_app(settings, runtime)`` wires the routes, the JSON error handlers, CORS and metrics
around a ``bridge.runtime.BridgeRuntime``, and nothing else (the runtime's owner starts and stops it).

Nothing the app answers is HTML: errors go through one JSON handler, the URL map never redirects (no merged
slashes: ``/static//x`` is a 404, not a 308 page) and the automatic ``OPTIONS`` answer is JSON.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, RequestRedirect

from bridge.http import cors, dashboard, metrics, openapi
from bridge.http.api import bp
from bridge.http.ratelimit import RateLimit, TokenBuckets
from bridge.http.state import STATE, AppState
from bridge.http.validation import INTERNAL, MAX_BODY_BYTES
from bridge.runtime import BridgeRuntime
from config.errors import RequestError
from config.settings import Settings, load_settings

log = logging.getLogger(__name__)


class _NoRedirectMap(Map):
    """werkzeug's URL map without merged slashes: it answered ``/static//x`` with an HTML 308 redirect."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["merge_slashes"] = False
        super().__init__(*args, **kwargs)


class BridgeFlask(Flask):
    """Flask with the URL map above and JSON where Flask answers by itself: ``OPTIONS`` (Flask's own is an empty
    ``text/html``) and a routing redirect that is left (an empty path: ``308 {"location": "/"}``, not a page)."""

    url_map_class = _NoRedirectMap

    def handle_http_exception(self, e: HTTPException) -> HTTPException | Any:
        """A routing redirect as JSON; every other HTTP error to the JSON handlers."""
        if isinstance(e, RequestRedirect):
            response = jsonify(location=e.new_url)
            response.status_code = e.code
            response.headers["Location"] = e.new_url
            return response
        return super().handle_http_exception(e)

    def make_default_options_response(self) -> Response:
        """``200 {"allow": [...]}`` with the ``Allow`` header (``bridge.http.cors`` adds a preflight's headers)."""
        methods = super().make_default_options_response().allow
        response = jsonify(allow=sorted(methods))
        response.allow.update(methods)
        return response


def create_app(
    settings: Settings | None = None,
    runtime: BridgeRuntime | None = None,
    *,
    setup_limit: RateLimit | None = None,
) -> Flask:
    """The bridge app serving ``runtime``, which it does not start: ``bridge.http.server`` serves
    ``BridgeRuntime.for_settings`` and starts it in the worker. Without a runtime the app serves a
    ``BridgeRuntime.in_memory(settings)`` (no broker, no disk), not started. ``settings``: the runtime's (another is a
    ValueError), else ``FLEET_*`` from the environment. ``setup_limit`` limits ``POST /stream_setup`` per client
    address (default ``RateLimit()``: 60 at once, 10 a second)."""
    if runtime is None:
        runtime = BridgeRuntime.in_memory(settings if settings is not None else load_settings(os.environ))
    elif settings is not None and settings != runtime.state.settings:
        raise ValueError("create_app: settings differ from the runtime's; pass the runtime alone")
    app = BridgeFlask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    STATE.set(app, AppState(runtime, TokenBuckets(setup_limit)))
    app.register_blueprint(bp)
    app.register_blueprint(openapi.bp)
    metrics.init_app(app)
    cors.init_app(app, runtime.state.settings.cors_origins)
    app.register_blueprint(dashboard.bp)
    _register_errors(app)
    return app


def _register_errors(app: Flask) -> None:
    @app.errorhandler(RequestError)
    def _request_error(exc: RequestError) -> tuple[Response, int]:
        return jsonify(error=exc.message), exc.status

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[Response, int, dict[str, str]]:
        headers = {name: value for name, value in exc.get_headers() if name.lower() != "content-type"}  # 405's Allow
        return jsonify(error=exc.description or exc.name), exc.code or 500, headers

    @app.errorhandler(Exception)
    def _internal_error(exc: Exception) -> tuple[Response, int]:
        log.exception("internal error")
        return jsonify(error=INTERNAL), 500
