"""Flask app factory: ``create_app(settings)`` builds the resources, the routes and the JSON error handlers.

Nothing the app answers is HTML: errors go through one JSON handler, the URL map never redirects (no merged
slashes: ``/static//x`` is a 404, not a 308 page) and the automatic ``OPTIONS`` answer is JSON.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, RequestRedirect

from bridge.http import cors, dashboard, metrics, openapi
from bridge.http.api import SETUP_LIMIT, bp
from bridge.http.ratelimit import RateLimit, TokenBuckets
from bridge.http.sessions import Sessions
from bridge.ingest.history import History
from bridge.ingest.messages import Ingest
from bridge.ingest.repair import GapRepairer
from bridge.ingest.store import ReadingStore
from bridge.ingest.subscriber import Subscriber
from bridge.republish.aggregates import start_republisher
from bridge.services.baseline import Baselines
from bridge.services.state import BridgeState
from config.errors import RequestError
from config.settings import Settings, load_settings

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024


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
    *,
    start_mqtt: bool = True,
    persist: bool | None = None,
    setup_limit: RateLimit | None = None,
) -> Flask:
    """Build the bridge app; with ``start_mqtt`` it connects to the broker in the background, and with ``persist``
    (default: as ``start_mqtt``) it keeps history in SQLite under ``settings.data_dir`` and reloads it first.
    ``setup_limit`` limits ``POST /stream_setup`` per client address (default ``RateLimit()``: 60 at once, 10 a
    second)."""
    settings = settings if settings is not None else load_settings(os.environ)
    app = BridgeFlask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    zone = settings.zone()
    store = None
    if start_mqtt if persist is None else persist:
        store = ReadingStore(Path(settings.data_dir), settings.retention_s, settings.store, settings.speed)
    history = History(settings.history_s, store, settings.speed)
    if store is not None:
        log.info("history: %d readings reloaded from %s", history.load(lambda line: log.info("%s", line)), store.path)
    ingest = Ingest(history)
    state = BridgeState(
        settings=settings,
        zone=zone,
        history=history,
        ingest=ingest,
        sessions=Sessions(),
        baselines=Baselines(history, zone, settings.grace_s, span_s=settings.stats_span_s),
    )
    app.extensions["fleet"] = state
    app.extensions[SETUP_LIMIT] = TokenBuckets(setup_limit)
    app.register_blueprint(bp)
    app.register_blueprint(openapi.bp)
    metrics.init_app(app)
    cors.init_app(app, settings.cors_origins)
    app.register_blueprint(dashboard.bp)
    _register_errors(app)
    if start_mqtt:
        owned = None if settings.shard is None else settings.owned_households()
        if owned is not None:
            log.info(
                "shard %s: this bridge owns %d of %d households", settings.shard, len(owned), len(settings.households)
            )
        state.subscriber = Subscriber(
            settings.broker, ingest, settings.bridge_id, owned, status_topic=settings.bridge_status_topic()
        )
        state.subscriber.start()
        state.baselines.start()  # refreshes quick statistics in the background
        app.extensions["fleet_republisher"] = start_republisher(state)  # stopped by bridge.http.server on worker exit
        repairer = GapRepairer(history, state.subscriber.publish, owns=settings.owns)
        repairer.start()
        app.extensions["fleet_repairer"] = repairer
        state.replays_requested = repairer.seqs_requested  # one counter: /api/meters and /metrics read it
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
        return jsonify(error="Internal error; see the bridge's log."), 500
