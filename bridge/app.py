"""Flask app factory: ``create_app(settings)`` builds the resources, the routes and the JSON error handlers."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from bridge import cors, dashboard, metrics, openapi
from bridge.api import bp
from bridge.baseline import Baselines
from bridge.history import History
from bridge.ingest import Ingest
from bridge.repair import GapRepairer
from bridge.republish import start_republisher
from bridge.sessions import Sessions
from bridge.state import BridgeState
from bridge.store import ReadingStore
from bridge.subscriber import Subscriber
from config.errors import RequestError
from config.settings import Settings, load_settings

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024


def create_app(settings: Settings | None = None, *, start_mqtt: bool = True, persist: bool | None = None) -> Flask:
    """Build the bridge app; with ``start_mqtt`` it connects to the broker in the background, and with ``persist``
    (default: as ``start_mqtt``) it keeps history in SQLite under ``settings.data_dir`` and reloads it first."""
    settings = settings if settings is not None else load_settings(os.environ)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    zone = settings.zone()
    store = None
    if start_mqtt if persist is None else persist:
        store = ReadingStore(Path(settings.data_dir), settings.retention_s, settings.store, settings.speed)
    history = History(settings.history_s, store, settings.speed)
    if store is not None:
        log.info("history: %d readings reloaded from %s", history.load(), store.path)
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
        state.subscriber = Subscriber(settings.broker, ingest, settings.bridge_id, owned)
        state.subscriber.start()
        state.baselines.start()  # refreshes quick statistics in the background
        app.extensions["fleet_republisher"] = start_republisher(state)  # stopped by bridge.server on worker exit
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
