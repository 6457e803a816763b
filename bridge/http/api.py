"""HTTP routes: the original API (``/stream_setup``, ``/stream_qstats``, ``/stream_data``) plus ``/healthz``.

Thin shell: validation lives in ``bridge.http.validation``, aggregation in ``bridge.windows.aggregate``, statistics in
``bridge.windows.statistics``, framing in ``bridge.http.sse``. Every error is JSON (see ``bridge.http.app``).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Final

from flask import Blueprint, Response, jsonify, request

from bridge.http.sessions import Sessions, StreamSpec
from bridge.http.state import current
from bridge.http.streaming import events
from bridge.http.validation import SETUP_OK, parse_by, parse_event_id, parse_json_object, parse_pace, parse_setup
from bridge.ingest.health import degraded_reasons
from bridge.services.state import BridgeState
from bridge.windows.statistics import stats_document
from bridge.windows.streams import WindowCursor, resume_start
from config.errors import RequestError
from config.wire import format_ts

COOKIE: Final = "stream_id"
MAX_WAIT_S: Final = 1.0
STREAM_EXPIRED: Final = "Stream expired: set up again."
TOO_MANY_SETUPS: Final = "Too many stream setups from this address; try again after Retry-After seconds."

bp = Blueprint("api", __name__)


@bp.post("/stream_setup")
def stream_setup() -> Response | tuple[Response, int, dict[str, str]]:
    """Validate a setup and create a stream of its own for the caller (at a rate limited per client address)."""
    app = current()
    # The peer's address: behind a proxy that is the proxy's (X-Forwarded-For is never trusted: anyone can send it).
    retry_after_s = app.setups.take(request.remote_addr or "", time.monotonic())
    if retry_after_s:
        return jsonify(error=TOO_MANY_SETUPS), 429, {"Retry-After": str(retry_after_s)}
    state = app.core
    setup = parse_setup(parse_json_object(request.get_data(cache=False)), state.known_households())
    spec = app.sessions.create(setup)
    state.baselines.want(spec.household, spec.interval_s)  # computed in the background: setup never waits for it
    response = jsonify(
        status=SETUP_OK,
        stream_id=spec.stream_id,
        household=spec.household,
        interval=spec.interval_s,
        start_index=spec.start_index,
        pace="interval" if spec.paced else "none",
        by="hour" if spec.by_hour else "day",
        stream_url=f"/stream_data?stream={spec.stream_id}",
    )
    response.set_cookie(COOKIE, spec.stream_id, httponly=True, samesite="Lax")
    return response


def _select() -> StreamSpec:
    """The stream a request means: ``?stream=``, ``?household=&interval=``, the cookie, or (a request that names no
    stream at all, as the original API's clients) the latest setup. A stream named but unknown (evicted, or from
    before a restart) is a 404, never someone else's stream."""
    app = current()
    state, sessions = app.core, app.sessions
    args = request.args
    if "stream" in args:
        return _known(sessions, args["stream"])
    if "household" in args or "interval" in args or "start_index" in args:  # never a start_index ignored
        setup = parse_setup(args, state.known_households())
        return StreamSpec("query", setup.household, setup.interval_s, setup.start_index, setup.paced, setup.by_hour)
    if COOKIE in request.cookies:
        return _known(sessions, request.cookies[COOKIE])
    latest = sessions.latest()
    if latest is None:
        raise RequestError("First try stream_setup.", 404)
    return latest


def _known(sessions: Sessions, stream_id: str) -> StreamSpec:
    spec = sessions.get(stream_id)
    if spec is None:
        raise RequestError(STREAM_EXPIRED, 404)
    return spec


@bp.get("/stream_qstats")
def stream_qstats() -> Response | tuple[Response, int, dict[str, str]]:
    """Quick statistics of the selected stream's household and interval."""
    state = current().core
    spec = _select()
    baseline = state.baselines.get(spec.household, spec.interval_s)
    if baseline is None:
        body = jsonify(
            error=f"Statistics for household {spec.household} are warming up: "
            f"no complete {spec.interval_s} s window received yet.",
            warming_up=True,
            household=spec.household,
            interval=spec.interval_s,
        )
        return body, 503, {"Retry-After": str(max(1, min(spec.interval_s, 60)))}
    doc = stats_document(baseline.stats)
    if parse_by(request.args.get("by")) or spec.by_hour:  # the hour-of-day baselines, keyed by local hour "00".."23"
        doc["hourly"] = {f"{hour:02d}": stats_document(stats) for hour, stats in sorted(baseline.hourly.items())}
    doc.update(
        {
            "household": spec.household,
            "interval": spec.interval_s,
            "from": format_ts(baseline.from_s),
            "to": format_ts(baseline.to_s),
        }
    )
    return jsonify(doc)


@bp.get("/stream_data")
def stream_data() -> Response:
    """Server-Sent Events: one event per final window of the selected stream, heartbeats in between."""
    app = current()
    state = app.core
    spec = _select()
    fmt = request.args.get("format", "json")
    if fmt not in ("json", "legacy"):
        raise RequestError("format must be json or legacy.")
    paced = parse_pace(request.args["pace"]) if "pace" in request.args else spec.paced
    if "by" in request.args:
        spec = replace(spec, by_hour=parse_by(request.args["by"]))
    last_id = parse_event_id(request.headers.get("Last-Event-ID") or request.args.get("last_event_id"))
    cursor = WindowCursor(spec.interval_s, state.settings.grace_s, state.zone, spec.start_index)
    if last_id is not None:  # a reconnecting client: go on right after the last window it saw
        cursor.start = resume_start(last_id, spec.interval_s, state.zone)
    state.baselines.want(spec.household, spec.interval_s)
    response = Response(events(app, spec, cursor, fmt == "legacy", paced), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    return response


_HEALTH_KEYS = ("status", "last_seq", "last_reading", "received", "duplicates")


def _meter_counters(state: BridgeState, meter: str) -> dict[str, object]:
    summary = state.history.summary(meter)
    return {
        "status": summary.status,
        "last_seq": summary.last_seq,
        "last_reading": None if summary.watermark is None else format_ts(summary.watermark - 1),
        "received": summary.received,
        "duplicates": summary.duplicates,
        "gaps_open": summary.gaps_open,
        "gaps_repaired": summary.gaps_repaired,
        "seq_restarts": summary.seq_restarts,
        "replay_requested": state.replays_requested[meter],
        "rejected": state.ingest.rejected_of(meter),
    }


@bp.get("/api/meters")
def api_meters() -> Response:
    """Per meter: availability, sequence and delivery counters (what arrived, twice, never, repaired, rejected)."""
    state = current().core
    return jsonify(meters={meter: _meter_counters(state, meter) for meter in state.known_households()})


@bp.get("/healthz")
def healthz() -> Response:
    """Health and a summary: 200 ok, or 503 degraded with the reasons (``bridge.ingest.health``); MQTT session and the
    broker it is on, meters heard, message counters."""
    app = current()
    state = app.core
    meters = {
        meter: {key: value for key, value in _meter_counters(state, meter).items() if key in _HEALTH_KEYS}
        for meter in state.history.meters()
        if state.settings.owns(meter)  # a shard's reloaded history may hold meters it no longer owns
    }
    reasons = degraded_reasons(state.health_signals(), state.bounds())
    subscriber = state.subscriber
    if state.mqtt_alive():
        mqtt = "connected"
    else:  # stalled: connected, but the session delivers nothing (a reconnect is being forced)
        mqtt = "stalled" if subscriber is not None and subscriber.connected else "disconnected"
    body: dict[str, object] = {
        "status": "degraded" if reasons else "ok",
        "mqtt": mqtt,
        "meters": meters,
        "messages": state.ingest.counters(),
        "streams": len(app.sessions),
        "last_message_age_s": None if subscriber is None else round(subscriber.last_message_age_s(), 3),
        "broker": None if subscriber is None else subscriber.node_url(),  # the node it is on (or tries next)
    }
    if reasons:
        body["reason"] = reasons
        body["error"] = "; ".join(reasons)  # every error status carries "error", as the rest of the API's
    response = jsonify(body)
    response.status_code = 503 if reasons else 200
    response.cache_control.no_store = True
    return response
