"""The live dashboard for people at ``GET /``, and the JSON index for programs (content negotiation).

``GET /`` gives a browser (``Accept: text/html``) the page ``static/dashboard.html``; ``?format=json``, an
``Accept`` that prefers JSON, or no ``Accept`` at all gives the JSON index. The page draws from the public API
(``/stream_data`` as Server-Sent Events) plus ``GET /dashboard/households``: the known households and each one's
simulated time, which the page needs to ask for "the last hour" (``start_index`` is a simulated time of day).
"""

from __future__ import annotations

from typing import Final

from flask import Blueprint, Response, current_app, jsonify, request

from bridge.http.state import current
from bridge.windows.aggregate import local_midnight
from config.errors import RequestError
from config.households import CLASSIC
from config.wire import format_ts

SPAN_S: Final = 3600  # the charts show the last hour
INTERVAL_PRESETS_S: Final = (5, 15, 30, 60)
# Each panel holds one SSE connection and a browser opens at most 6 per server over HTTP/1.1: leave two for the rest.
MAX_PANELS: Final = 4
# No inline script or style and nothing from another origin (no CDN): the page is three files of this package.
CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
JSON: Final = "application/json"
HTML: Final = "text/html"

bp = Blueprint("dashboard", __name__)


@bp.get("/")
def index() -> Response:
    """The dashboard for a browser, the JSON index for a program (``?format=json|html`` overrides ``Accept``)."""
    fmt = request.args.get("format")
    if fmt is None:
        best = request.accept_mimetypes.best_match([JSON, HTML], default=JSON)
        fmt = "html" if best == HTML else "json"
    if fmt == "json":
        response = json_index()
    elif fmt == "html":
        response = current_app.send_static_file("dashboard.html")
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.cache_control.no_cache = True  # always revalidate: the page and its scripts change together
    else:
        raise RequestError("format must be json or html.")
    response.vary.add("Accept")
    return response


def json_index() -> Response:
    """What this server offers (a program landing here gets directions, not a 404)."""
    return jsonify(
        service="smart-meter fleet bridge",
        endpoints={
            "GET /": "a live dashboard for browsers; this index for Accept: application/json or ?format=json",
            "POST /stream_setup": 'JSON {"household": "A", "interval": 5, "start_index": 0}',
            "GET /stream_data": "Server-Sent Events of the selected stream (?stream=, ?household=&interval=, cookie)",
            "GET /stream_qstats": "quick statistics of the selected stream",
            "GET /healthz": "liveness, MQTT connection and counters",
        },
        households=current().core.known_households(),
    )


@bp.get("/dashboard/households")
def households() -> Response:
    """Known households with their simulated time now and the ``start_index`` of one hour ago, for the page."""
    state = current().core
    rows = []
    for household in state.known_households():
        watermark = state.history.watermark(household)
        template = CLASSIC.get(household)
        row: dict[str, object] = {
            "household": household,
            "description": None if template is None else template.description,
            "status": state.history.summary(household).status,
            "now": None if watermark is None else format_ts(watermark),
            "now_s": watermark,
            "start_index": None,
        }
        if watermark is not None:  # start_index is a time of day: the simulated one, an hour before the meter's now
            then = watermark - SPAN_S
            row["start_index"] = then - local_midnight(then, state.zone)
        rows.append(row)
    response = jsonify(
        households=rows,
        tz=state.settings.tz,
        grace_s=state.settings.grace_s,
        span_s=SPAN_S,
        interval_presets=list(INTERVAL_PRESETS_S),
        max_panels=MAX_PANELS,
    )
    response.cache_control.no_store = True
    return response
