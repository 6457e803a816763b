"""bridge.http.cors: no CORS header unless FLEET_CORS_ORIGINS allows the Origin; preflight for POST /stream_setup."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from werkzeug.datastructures import Headers

from bridge.http.cors import ALLOW_HEADERS, MAX_AGE_S
from config.settings import load_settings
from tests.support.bridgeapp import memory_app

DASHBOARD = "http://localhost:8080"
OTHER = "https://evil.example"
PREFLIGHT = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}


def client_for(origins: str | None) -> FlaskClient:
    env = {} if origins is None else {"FLEET_CORS_ORIGINS": origins}
    return memory_app(load_settings(env)).test_client()


def cors_headers(headers: Headers) -> dict[str, str]:
    return {name: value for name, value in headers.items() if name.lower().startswith("access-control-")}


@pytest.mark.parametrize("origin", [DASHBOARD, OTHER, "null"])
def test_default_sends_no_cors_header_at_all(origin: str) -> None:
    client = client_for(None)
    for response in (
        client.get("/healthz", headers={"Origin": origin}),
        client.options("/stream_setup", headers={"Origin": origin, **PREFLIGHT}),
        client.post("/stream_setup", json={}, headers={"Origin": origin}),
    ):
        assert cors_headers(response.headers) == {}
        assert "Origin" not in response.vary


def test_allowed_origin_is_echoed_with_vary() -> None:
    response = client_for(f"{DASHBOARD},https://other.example").get("/healthz", headers={"Origin": DASHBOARD})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == DASHBOARD
    assert "Origin" in response.vary
    assert response.headers["Access-Control-Expose-Headers"] == "Retry-After"
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_origin_matches_case_insensitively() -> None:
    response = client_for(DASHBOARD).get("/healthz", headers={"Origin": "HTTP://LocalHost:8080"})
    assert response.headers["Access-Control-Allow-Origin"] == "HTTP://LocalHost:8080"


def test_other_origin_gets_no_allow_origin_but_vary() -> None:
    response = client_for(DASHBOARD).get("/healthz", headers={"Origin": OTHER})
    assert response.status_code == 200
    assert cors_headers(response.headers) == {}
    assert "Origin" in response.vary  # a shared cache must not give this answer to the allowed origin


def test_no_origin_header_no_cors_headers() -> None:
    response = client_for(DASHBOARD).get("/healthz")
    assert cors_headers(response.headers) == {}


def test_star_allows_any_origin() -> None:
    response = client_for("*").get("/healthz", headers={"Origin": OTHER})
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Origin" in response.vary


def test_preflight_for_stream_setup() -> None:
    response = client_for(DASHBOARD).options("/stream_setup", headers={"Origin": DASHBOARD, **PREFLIGHT})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == DASHBOARD
    assert response.headers["Access-Control-Allow-Methods"] == "POST"
    assert "Content-Type" in [h.strip() for h in response.headers["Access-Control-Allow-Headers"].split(",")]
    assert response.headers["Access-Control-Allow-Headers"] == ALLOW_HEADERS
    assert response.headers["Access-Control-Max-Age"] == str(MAX_AGE_S)
    assert "Origin" in response.vary


def test_preflight_from_other_origin_is_not_answered() -> None:
    response = client_for(DASHBOARD).options("/stream_setup", headers={"Origin": OTHER, **PREFLIGHT})
    assert cors_headers(response.headers) == {}


def test_preflight_for_a_get_route_lists_get() -> None:
    headers = {"Origin": DASHBOARD, "Access-Control-Request-Method": "GET"}
    response = client_for(DASHBOARD).options("/stream_data", headers=headers)
    assert response.headers["Access-Control-Allow-Methods"] == "GET"


def test_preflight_for_an_unknown_path_allows_nothing() -> None:
    headers = {"Origin": DASHBOARD, "Access-Control-Request-Method": "POST"}
    response = client_for(DASHBOARD).options("/nowhere", headers=headers)
    assert response.status_code == 404
    assert response.is_json
    assert "Access-Control-Allow-Methods" not in response.headers


def test_the_post_itself_and_its_errors_carry_the_origin() -> None:
    client = client_for(DASHBOARD)
    ok = client.post("/stream_setup", json={"household": "A", "interval": 5}, headers={"Origin": DASHBOARD})
    assert ok.status_code == 200
    assert ok.headers["Access-Control-Allow-Origin"] == DASHBOARD
    bad = client.post("/stream_setup", json={"household": "A"}, headers={"Origin": DASHBOARD})
    assert bad.status_code == 400
    assert bad.is_json
    assert bad.headers["Access-Control-Allow-Origin"] == DASHBOARD  # the page can read the error message
