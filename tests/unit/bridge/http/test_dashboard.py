"""bridge.http.dashboard through Flask's test client: content negotiation at ``/``, the page's files, its clock
endpoint.
The page itself runs in headless Chromium in ``tests/integration/test_dashboard.py``.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib

import pytest
from flask import Flask
from flask.testing import FlaskClient

from bridge.http.dashboard import CSP, SPAN_S
from config.settings import load_settings
from config.topics import reading_topic
from config.wire import Reading, encode_reading
from tests.support.bridgeapp import memory_app, state
from tests.support.paths import ROOT

T0 = 1_704_067_200  # 2024-01-01T00:00:00Z
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
STATIC = ROOT / "bridge" / "http" / "static"


def feed(app: Flask, meter: str, first_ts: int, seconds: int) -> None:
    for i in range(seconds):
        reading = Reading(meter, i, first_ts + i, 1500.0, 0.0, 2500.0, 0.0, 0.0, 0.0)
        assert state(app).ingest.handle(reading_topic(meter), encode_reading(reading))


@pytest.mark.parametrize(
    ("query", "accept"),
    [
        ("", BROWSER_ACCEPT),
        ("", "text/html"),
        ("?format=html", None),
        ("?format=html", "application/json"),
    ],
)
def test_browser_gets_the_dashboard(client: FlaskClient, query: str, accept: str | None) -> None:
    response = client.get(f"/{query}", headers={} if accept is None else {"Accept": accept})
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert '<script src="static/dashboard.js" defer></script>' in page
    assert response.headers["Content-Security-Policy"] == CSP
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "no-cache" in response.headers["Cache-Control"]
    assert "Accept" in response.headers["Vary"]
    response.close()  # a file response: close it, as the server does


@pytest.mark.parametrize(
    ("query", "accept"),
    [
        ("", None),  # a program that says nothing keeps getting what it always got
        ("", "*/*"),  # curl
        ("", "application/json"),
        ("", "application/json, text/html;q=0.5"),
        ("?format=json", BROWSER_ACCEPT),
        ("", "text/event-stream"),  # nothing we offer: the API's default, JSON
    ],
)
def test_program_gets_the_json_index(client: FlaskClient, query: str, accept: str | None) -> None:
    response = client.get(f"/{query}", headers={} if accept is None else {"Accept": accept})
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["service"] == "smart-meter fleet bridge"
    assert body["households"] == ["A", "B", "C"]
    assert set(body["endpoints"]) >= {"GET /", "POST /stream_setup", "GET /stream_data", "GET /stream_qstats"}
    assert "Accept" in response.headers["Vary"]


def test_unknown_format_is_json_400(client: FlaskClient) -> None:
    response = client.get("/?format=xml", headers={"Accept": BROWSER_ACCEPT})
    assert response.status_code == 400
    assert response.get_json() == {"error": "format must be json or html."}


@pytest.mark.parametrize(("name", "mimetype"), [("dashboard.js", "text/javascript"), ("dashboard.css", "text/css")])
def test_static_files_are_served(client: FlaskClient, name: str, mimetype: str) -> None:
    response = client.get(f"/static/{name}")
    assert response.status_code == 200
    assert response.mimetype == mimetype
    assert response.get_data() == (STATIC / name).read_bytes()
    response.close()


def test_page_loads_nothing_from_elsewhere_and_never_parses_data_as_html() -> None:
    page = (STATIC / "dashboard.html").read_text()
    for url in re.findall(r'(?:src|href)="([^"]*)"', page):
        assert not url.startswith("/"), url  # relative: same origin, and it works under a path prefix
        assert "//" not in url, url
    for name in ("dashboard.html", "dashboard.js", "dashboard.css"):
        text = (STATIC / name).read_text()
        assert re.search(r"https?://", text) is None, name  # no CDN, no web font, no analytics
        assert "@import" not in text, name
    script = (STATIC / "dashboard.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script, sink


def test_static_files_are_package_data() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert any(fnmatch.fnmatch("bridge.http.static", pattern) for pattern in setuptools["packages"]["find"]["include"])
    patterns = setuptools["package-data"]["*"]
    for path in STATIC.iterdir():
        assert any(fnmatch.fnmatch(path.name, pattern) for pattern in patterns), path.name


def test_households_before_any_reading(client: FlaskClient) -> None:
    response = client.get("/dashboard/households")
    assert response.status_code == 200
    body = response.get_json()
    assert [row["household"] for row in body["households"]] == ["A", "B", "C"]
    for row in body["households"]:
        assert (row["now"], row["now_s"], row["start_index"]) == (None, None, None)
        assert row["status"] == "unknown"
    assert body["households"][1]["description"] == "office"
    assert body["tz"] == "UTC"
    assert body["span_s"] == SPAN_S == 3600
    assert body["interval_presets"] == [5, 15, 30, 60]
    assert (body["grace_s"], body["max_panels"]) == (0, 4)
    assert "no-store" in response.headers["Cache-Control"]


def test_households_report_the_configured_grace() -> None:
    client = memory_app(load_settings({"FLEET_GRACE_S": "3"})).test_client()
    assert client.get("/dashboard/households").get_json()["grace_s"] == 3  # the page's caught-up test uses it


def test_households_start_index_is_an_hour_ago_on_the_meters_clock(app: Flask, client: FlaskClient) -> None:
    feed(app, "A", T0, 120)  # 00:00:00 .. 00:01:59 UTC: an hour ago is yesterday 23:02:00
    feed(app, "Z-9", T0 + 7200, 10)  # a meter heard on the wire, not configured, without a description
    rows = {row["household"]: row for row in client.get("/dashboard/households").get_json()["households"]}
    assert list(rows) == ["A", "B", "C", "Z-9"]
    assert rows["A"]["now"] == "2024-01-01T00:02:00Z"
    assert rows["A"]["now_s"] == T0 + 120
    assert rows["A"]["start_index"] == 23 * 3600 + 2 * 60
    assert rows["Z-9"]["start_index"] == 1 * 3600 + 10
    assert rows["Z-9"]["description"] is None
    assert rows["B"]["start_index"] is None


def test_households_start_index_in_the_fleets_time_zone() -> None:
    app = memory_app(load_settings({"FLEET_TZ": "Asia/Kolkata"}))
    feed(app, "A", T0, 60)  # up to 05:31 IST: an hour ago is 04:31 local
    body = app.test_client().get("/dashboard/households").get_json()
    assert body["tz"] == "Asia/Kolkata"
    assert body["households"][0]["start_index"] == 4 * 3600 + 31 * 60
