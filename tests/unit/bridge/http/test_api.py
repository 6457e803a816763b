"""bridge.http.app + bridge.http.api through Flask's test client (no MQTT): setup, qstats, stream selection, JSON
errors.
/stream_data is not exercised here (it streams forever): the integration tests read it over a real socket.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient

from bridge.http.api import STREAM_EXPIRED, TOO_MANY_SETUPS
from bridge.http.ratelimit import RateLimit
from bridge.http.validation import NOT_INTEGERS, NOT_OBJECT, NOT_POSITIVE, NOT_STRING, REQUIRED, UNRECOGNIZED
from bridge.ingest.messages import Ingest
from bridge.windows.statistics import Z_99
from config.settings import load_settings
from config.topics import reading_topic
from config.wire import Reading, encode_reading
from tests.support.bridgeapp import app_state, memory_app, state

T0 = 1_704_067_200  # 2024-01-01T00:00:00Z
SETUP_OK = "Streaming setup and stats calculation successful"
QSTATS_KEYS = ("25p", "75p", "best_distribution", "median", "rt_critical_value_0.01")


def overall_w(meter: str, i: int) -> float:
    # A: 5 s windows of 2.0, 2.1, 2.2, 2.3 kW in turn; B: a flat 3 kW.
    return 2000.0 + 100.0 * ((i // 5) % 4) if meter == "A" else 3000.0


def feed(app: Flask, meter: str, seconds: int = 120) -> None:
    ac_w = 1500.0 if meter == "A" else 2000.0
    ingest = state(app).ingest
    for i in range(seconds):
        reading = Reading(meter, i, T0 + i, ac_w, 0.0, overall_w(meter, i), 0.0, 0.0, 0.0)
        assert ingest.handle(reading_topic(meter), encode_reading(reading))


def leaves(node: object) -> list[object]:
    if isinstance(node, dict):
        return [leaf for value in node.values() for leaf in leaves(value)]
    if isinstance(node, list):
        return [leaf for value in node for leaf in leaves(value)]
    return [node]


def setup(client: FlaskClient, household: str, interval: object = 5) -> str:
    response = client.post("/stream_setup", json={"household": household, "interval": interval})
    assert response.status_code == 200, response.get_json()
    stream_id: str = response.get_json()["stream_id"]
    return stream_id


def test_setup_success(client: FlaskClient) -> None:
    response = client.post("/stream_setup", json={"household": "a", "interval": "15", "start_index": 3600})
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == SETUP_OK
    assert (body["household"], body["interval"], body["start_index"]) == ("A", 15, 3600)
    assert isinstance(body["stream_id"], str)
    assert len(body["stream_id"]) >= 16
    assert body["stream_url"] == f"/stream_data?stream={body['stream_id']}"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"stream_id={body['stream_id']};")
    assert "HttpOnly" in cookie
    assert setup(client, "A") != body["stream_id"]  # every setup gets a stream of its own


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{", NOT_OBJECT),
        (b'{"household": "A", "interval": NaN}', NOT_OBJECT),
        (b'[{"household": "A", "interval": 5}]', NOT_OBJECT),
        (b"\xff", NOT_OBJECT),
        (b"", NOT_OBJECT),
        (b"{}", REQUIRED),
        (b'{"household": "A"}', REQUIRED),
        (b'{"household": 5, "interval": 5}', NOT_STRING),
        (b'{"household": ["A"], "interval": 5}', NOT_STRING),
        (b'{"household": "A", "interval": 2.7}', NOT_INTEGERS),
        (b'{"household": "A", "interval": [5]}', NOT_INTEGERS),
        (b'{"household": "A", "interval": 0}', NOT_POSITIVE),
        (b'{"household": "D", "interval": 5}', UNRECOGNIZED),
        (b'{"household": "A/#", "interval": 5}', UNRECOGNIZED),
    ],
)
def test_setup_errors_are_json_400(client: FlaskClient, data: bytes, message: str) -> None:
    response = client.post("/stream_setup", data=data, content_type="application/json")
    assert response.status_code == 400
    assert response.is_json
    assert response.get_json() == {"error": message}
    assert client.get("/healthz").get_json()["streams"] == 0  # nothing changed


HOSTILE_IDS = ["+", "#", "A/+", "meters/#", "/", "A\x00", "\x00", "A\r\nSet-Cookie: x=1", "\x07", "\x1b[2J", "A" * 65]


@pytest.mark.parametrize("household", [*HOSTILE_IDS, "x" * 10_000])
def test_hostile_household_ids_change_nothing(client: FlaskClient, household: str) -> None:
    response = client.post("/stream_setup", json={"household": household, "interval": 5})
    assert response.status_code == 400
    assert response.is_json
    assert response.get_json() == {"error": UNRECOGNIZED}
    assert "Set-Cookie" not in response.headers
    assert client.get("/healthz").get_json()["streams"] == 0  # no stream, no state
    for path in ("/stream_qstats", "/stream_data"):  # and none by query either (no stream is opened)
        response = client.get(path, query_string={"household": household, "interval": "5"})
        assert response.status_code == 400
        assert response.is_json


@pytest.mark.parametrize("household", [5, 5.5, None, True, [], ["A"], {"id": "A"}])
def test_non_string_household_ids_change_nothing(client: FlaskClient, household: object) -> None:
    response = client.post("/stream_setup", json={"household": household, "interval": 5})
    assert response.status_code == 400
    assert response.is_json
    assert "Set-Cookie" not in response.headers
    assert client.get("/healthz").get_json()["streams"] == 0


def test_huge_body_is_json_413(client: FlaskClient) -> None:
    response = client.post("/stream_setup", data=b'{"household": "A", "x": "' + b"x" * 20_000 + b'"}')
    assert response.status_code == 413
    assert response.is_json
    assert isinstance(response.get_json()["error"], str)


def test_qstats_before_setup(client: FlaskClient) -> None:
    response = client.get("/stream_qstats")
    assert response.status_code == 404
    assert response.get_json() == {"error": "First try stream_setup."}


def test_qstats_warming_up_without_readings(client: FlaskClient) -> None:
    stream = setup(client, "C")
    response = client.get(f"/stream_qstats?stream={stream}")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    body = response.get_json()
    assert (body["warming_up"], body["household"], body["interval"]) == (True, "C", 5)


def test_qstats_values(app: Flask, client: FlaskClient) -> None:
    feed(app, "A")
    setup(client, "A")
    response = client.get("/stream_qstats")
    assert response.status_code == 200
    doc = response.get_json()
    assert None not in leaves(doc)
    for key in QSTATS_KEYS:
        assert set(doc[key]) == {"AC", "Geyser", "Overall"}
    assert doc["25p"] == {"AC": 1.5, "Geyser": 0.0, "Overall": 2.075}
    assert doc["median"] == {"AC": 1.5, "Geyser": 0.0, "Overall": 2.15}
    assert doc["75p"] == {"AC": 1.5, "Geyser": 0.0, "Overall": 2.225}
    assert doc["rt_critical_value_0.01"]["AC"] == 1.5
    assert doc["rt_critical_value_0.01"]["Geyser"] == 0.0  # a constant channel: never null
    assert doc["best_distribution"]["Geyser"] in ("norm", "expon")
    # Grace 0 (the default): the 24 whole 5 s windows of [T0, T0 + 120), 6 each of 2.0, 2.1, 2.2 and 2.3 kW.
    means = np.array([2.0 + 0.1 * (k % 4) for k in range(24)])
    expected = {
        "norm": float(means.mean() + Z_99 * means.std()),
        "expon": float(means.min() + (means.mean() - means.min()) * math.log(100.0)),
    }
    best = doc["best_distribution"]["Overall"]
    assert doc["rt_critical_value_0.01"]["Overall"] == round(expected[best], 3)
    assert doc["rt_critical_value_0.01"]["Overall"] >= doc["75p"]["Overall"]
    assert (doc["household"], doc["interval"], doc["window_count"], doc["warming_up"]) == ("A", 5, 24, False)
    assert (doc["from"], doc["to"], doc["samples"]) == ("2024-01-01T00:00:00Z", "2024-01-01T00:02:00Z", 120)


def test_qstats_leave_out_windows_inside_the_grace() -> None:
    app = memory_app(load_settings({"FLEET_GRACE_S": "1"}))
    feed(app, "A")  # watermark T0 + 120: with a grace of 1 s the window [T0 + 115, T0 + 120) is not final yet
    client = app.test_client()
    setup(client, "A")
    doc = client.get("/stream_qstats").get_json()
    assert (doc["window_count"], doc["to"], doc["samples"]) == (23, "2024-01-01T00:01:55Z", 115)
    assert doc["median"]["Overall"] == 2.1  # 6 x 2.0, 6 x 2.1, 6 x 2.2, 5 x 2.3 kW


def test_stream_selection(app: Flask) -> None:
    feed(app, "A")
    feed(app, "B")
    client_a, client_b, other = app.test_client(), app.test_client(), app.test_client()
    stream_a = setup(client_a, "A")
    stream_b = setup(client_b, "B")

    def household(client: FlaskClient, query: str = "") -> str:
        response = client.get(f"/stream_qstats{query}")
        assert response.status_code == 200, response.get_json()
        name: str = response.get_json()["household"]
        return name

    assert household(client_a) == "A"  # its cookie, although B's setup came later
    assert household(other) == "B"  # no cookie: the latest setup
    assert household(other, f"?stream={stream_a}") == "A"
    assert household(client_b, f"?stream={stream_a}") == "A"
    assert household(other, f"?stream={stream_b}") == "B"
    assert household(client_a, "?household=b&interval=5") == "B"
    assert other.get("/stream_qstats?household=B&interval=5").get_json()["median"]["Overall"] == 3.0
    hourly = other.get("/stream_qstats?household=A&interval=60").get_json()
    assert (hourly["interval"], hourly["window_count"], hourly["warming_up"]) == (60, 2, True)  # both minutes fed
    client_a.set_cookie("stream_id", "forgotten")
    response = client_a.get("/stream_qstats")  # an unknown cookie is a 404, never the latest setup (someone else's)
    assert (response.status_code, response.get_json()) == (404, {"error": STREAM_EXPIRED})


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("?stream=nope", 404, STREAM_EXPIRED),
        ("?stream=", 404, STREAM_EXPIRED),
        ("?household=Z&interval=5", 400, UNRECOGNIZED),
        ("?household=A&interval=2.7", 400, NOT_INTEGERS),
        ("?household=A", 400, REQUIRED),
        ("?interval=5", 400, REQUIRED),
    ],
)
def test_selection_errors(client: FlaskClient, query: str, status: int, message: str) -> None:
    setup(client, "A")
    response = client.get(f"/stream_qstats{query}")
    assert response.status_code == status
    assert response.get_json() == {"error": message}


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/nope", 404), ("GET", "/stream_setup", 405), ("POST", "/stream_qstats", 405), ("PUT", "/healthz", 405)],
)
def test_http_errors_are_json(client: FlaskClient, method: str, path: str, status: int) -> None:
    response = client.open(path, method=method)
    assert response.status_code == status
    assert response.is_json
    assert isinstance(response.get_json()["error"], str)
    if status == 405:  # RFC 9110: a 405 lists the methods served (the JSON handler used to drop it)
        assert method not in response.headers["Allow"]
        assert response.headers["Allow"]
    assert b"<html" not in response.data.lower()


def test_internal_error_is_json_500(app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(request: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(app_state(app).sessions, "create", broken)
    response = client.post("/stream_setup", json={"household": "A", "interval": 5})
    assert response.status_code == 500
    assert response.get_json() == {"error": "Internal error; see the bridge's log."}


def test_healthz(app: Flask, client: FlaskClient) -> None:
    empty = client.get("/healthz").get_json()
    assert empty == {
        "status": "ok",
        "mqtt": "disconnected",
        "meters": {},
        "messages": {"accepted": 0, "duplicates": 0, "rejected": {}},
        "streams": 0,
        "last_message_age_s": None,  # no MQTT in these tests
        "broker": None,
    }
    feed(app, "A")
    ingest = state(app).ingest
    ingest.handle("meters/A/status", b"online")
    ingest.handle("meters/A/reading", b"garbage")
    setup(client, "A")
    body = client.get("/healthz").get_json()
    assert body["meters"] == {
        "A": {
            "status": "online",
            "last_seq": 119,
            "last_reading": "2024-01-01T00:01:59Z",
            "received": 120,
            "duplicates": 0,
        }
    }
    assert body["messages"] == {"accepted": 120, "duplicates": 0, "rejected": {"bad_json": 1}}
    assert body["streams"] == 1


def test_healthz_is_degraded_while_online_meters_are_silent(app: Flask, client: FlaskClient) -> None:
    """Readings 1 per simulated second at FLEET_SPEED 1: the bound is max(10 s, 10 periods) = 10 s of silence from
    every online meter; an offline meter's silence is no fault; a reading makes it ok again."""
    now = [time.time()]
    fleet = state(app)
    fleet.clock = lambda: now[0]
    fleet.ingest = Ingest(fleet.history, clock=lambda: now[0])
    fleet.ingest.handle("meters/D/status", b"online")
    now[0] += 10.5
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "degraded"
    [reason] = body["reason"]
    assert reason.startswith("no reading from the online meter for 1")
    assert reason.endswith("s (bound 10 s)")
    assert body["error"] == body["reason"][0]
    assert body["meters"]["D"]["status"] == "online"  # the usual keys are all there
    assert {"mqtt", "messages", "streams", "last_message_age_s"} <= set(body)

    fleet.ingest.handle("meters/D/status", b"offline")
    assert client.get("/healthz").status_code == 200  # nobody online: nothing missing
    fleet.ingest.handle("meters/D/status", b"online")
    assert client.get("/healthz").status_code == 503
    fleet.ingest.handle(reading_topic("D"), encode_reading(Reading("D", 0, T0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0)))
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ok"
    assert "reason" not in response.get_json()
    now[0] += 10.5
    assert client.get("/healthz").status_code == 503


@pytest.mark.parametrize("where", ["query", "header"])
def test_stream_data_refuses_an_event_id_no_clock_reaches(client: FlaskClient, where: str) -> None:
    """Twelve digits used to overflow datetime in resume_start: a 500 instead of a 400."""
    event_id = "999999999999"
    query = "/stream_data?household=A&interval=5"
    if where == "query":
        response = client.get(f"{query}&last_event_id={event_id}")
    else:
        response = client.get(query, headers={"Last-Event-ID": event_id})
    assert response.status_code == 400
    assert "Last-Event-ID" in response.get_json()["error"]


def test_start_index_alone_is_not_ignored(client: FlaskClient) -> None:
    """``?start_index=`` without household and interval used to fall through to the latest setup, silently ignored."""
    setup(client, "A")
    response = client.get("/stream_qstats?start_index=86400")
    assert response.status_code == 400
    assert response.get_json() == {"error": REQUIRED}


def test_api_meters_counts_delivery_per_meter(app: Flask, client: FlaskClient) -> None:
    ingest = state(app).ingest
    for seq in (0, 1, 2, 5):  # 3 and 4 never come
        reading = Reading("A", seq, T0 + seq, 0.0, 0.0, 500.0, 0.0, 0.0, seq / 3600)
        ingest.handle(reading_topic("A"), encode_reading(reading))
    ingest.handle(reading_topic("A"), encode_reading(Reading("A", 1, T0 + 1, 0.0, 0.0, 500.0, 0.0, 0.0, 1 / 3600)))
    # The same second with other values: not a duplicate, and it never replaces the reading held.
    ingest.handle(reading_topic("A"), encode_reading(Reading("A", 1, T0 + 1, 0.0, 0.0, 999.0, 0.0, 0.0, 1 / 3600)))
    ingest.handle(reading_topic("A"), b"not json")
    body = client.get("/api/meters").get_json()
    assert set(body["meters"]) == {"A", "B", "C"}
    a = body["meters"]["A"]
    assert (a["last_seq"], a["received"], a["duplicates"], a["gaps_open"], a["gaps_repaired"]) == (5, 4, 1, 2, 0)
    assert a["rejected"] == {"bad_json": 1, "conflict": 1}
    assert body["meters"]["B"]["received"] == 0


# --- One client cannot take over another's stream ----------------------------------------------------------------


def test_an_evicted_stream_is_a_404_not_someone_elses() -> None:
    """A victim's stream evicted by a flood of setups used to fall back to the latest setup: the victim's cookie (and
    its ?stream=) then streamed the flooder's household and interval, with status 200."""
    app = memory_app(load_settings({}), setup_limit=RateLimit(burst=1_000))  # the flood is not the
    feed(app, "A")  # subject here (the rate limit is: below)
    feed(app, "C")
    app_state(app).sessions.limit = 50  # MAX_SESSIONS, scaled down: the same eviction without 10,050 setups
    victim, flooder, widget = app.test_client(), app.test_client(), app.test_client()
    stream = setup(victim, "A")
    assert victim.get("/stream_qstats").get_json()["household"] == "A"
    for _ in range(60):
        setup(flooder, "C", 60)
    for client, path in (
        (victim, "/stream_qstats"),
        (victim, "/stream_data"),
        (widget, f"/stream_qstats?stream={stream}"),
    ):
        response = client.get(path)
        assert response.status_code == 404, (path, response.get_json())
        assert response.get_json() == {"error": STREAM_EXPIRED}
    again = setup(victim, "A")  # what the message says to do
    assert victim.get("/stream_qstats").get_json()["household"] == "A"
    assert again != stream
    latest = widget.get("/stream_qstats")  # no stream identity at all: the original's "latest setup" is kept
    assert (latest.status_code, latest.get_json()["household"]) == (200, "A")


def test_a_cookie_naming_no_stream_is_not_the_latest(client: FlaskClient) -> None:
    setup(client, "B")
    client.set_cookie("stream_id", "")
    response = client.get("/stream_qstats")
    assert (response.status_code, response.get_json()) == (404, {"error": STREAM_EXPIRED})


def limited_app(burst: int) -> Flask:
    """An app whose setups are limited to ``burst`` per address, earning one more every 1000 s (never in a test)."""
    return memory_app(load_settings({}), setup_limit=RateLimit(burst=burst, rate_per_s=0.001))


def test_setups_are_rate_limited_per_address() -> None:
    app = limited_app(3)
    client = app.test_client()
    here, there = {"REMOTE_ADDR": "192.0.2.1"}, {"REMOTE_ADDR": "192.0.2.2"}
    for _ in range(3):
        assert (
            client.post("/stream_setup", json={"household": "A", "interval": 5}, environ_base=here).status_code == 200
        )
    refused = client.post("/stream_setup", json={"household": "A", "interval": 5}, environ_base=here)
    assert refused.status_code == 429
    assert refused.is_json
    assert refused.get_json() == {"error": TOO_MANY_SETUPS}
    assert refused.headers["Retry-After"] == "1000"  # whole seconds until the next token
    assert "Set-Cookie" not in refused.headers
    assert client.get("/healthz").get_json()["streams"] == 3  # nothing created
    spoofed = {**here, "HTTP_X_FORWARDED_FOR": "198.51.100.7"}  # anyone can send it: never trusted
    assert client.post("/stream_setup", json={"household": "A", "interval": 5}, environ_base=spoofed).status_code == 429
    ok = client.post("/stream_setup", json={"household": "A", "interval": 5}, environ_base=there)
    assert ok.status_code == 200  # another address has its own bucket


def test_invalid_setups_count_too() -> None:
    """Every attempt takes a token (refused before any parsing): a flood of junk costs no more than one of setups."""
    client = limited_app(2).test_client()
    assert client.post("/stream_setup", data=b"{").status_code == 400
    assert client.post("/stream_setup", json={"household": "A"}).status_code == 400
    assert client.post("/stream_setup", json={"household": "A", "interval": 5}).status_code == 429


def test_the_default_limit_lets_a_burst_of_setups_through(client: FlaskClient) -> None:
    for _ in range(60):
        setup(client, "A")


# --- Nothing Flask answers by itself is HTML ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/static//x", "//static//dashboard.css", "/stream_setup/", "/static/"])
def test_no_redirect_pages(client: FlaskClient, path: str) -> None:
    """``/static//x`` was an HTML 308 redirect (werkzeug merged the slashes)."""
    response = client.get("/", environ_overrides={"PATH_INFO": path})
    assert response.status_code == 404
    assert response.is_json
    assert isinstance(response.get_json()["error"], str)


def test_a_redirect_left_is_json(client: FlaskClient) -> None:
    """An empty path (``GET http://host HTTP/1.1``) is still redirected to ``/``, as JSON."""
    response = client.get("/", environ_overrides={"PATH_INFO": ""})
    assert response.status_code == 308
    assert response.is_json
    assert response.get_json() == {"location": response.headers["Location"]}


@pytest.mark.parametrize(
    ("path", "allow"), [("/healthz", ["GET", "HEAD", "OPTIONS"]), ("/stream_setup", ["OPTIONS", "POST"])]
)
def test_options_is_json(client: FlaskClient, path: str, allow: list[str]) -> None:
    """Flask's automatic OPTIONS answered 200 with an empty text/html body."""
    response = client.options(path)
    assert response.status_code == 200
    assert response.is_json
    assert response.get_json() == {"allow": allow}
    assert sorted(response.allow) == allow


def test_healthz_shows_the_brokers_node_without_password(app: Flask, client: FlaskClient) -> None:
    """The broker the bridge is on: the first of the list, then the next once it moved on (never the password)."""
    from bridge.ingest.subscriber import Subscriber
    from config.settings import parse_broker_urls

    broker = parse_broker_urls("mqtt://bridge:pw@127.0.0.1:1884,mqtt://bridge:pw@127.0.0.1:1885")
    subscriber = Subscriber(broker, state(app).ingest)
    state(app).subscriber = subscriber
    assert client.get("/healthz").get_json()["broker"] == "mqtt://bridge@127.0.0.1:1884"
    subscriber._choose_node()  # the first attempt
    subscriber._connect_failed(ConnectionRefusedError())
    subscriber._choose_node()  # the next
    body = client.get("/healthz").get_json()
    assert body["broker"] == "mqtt://bridge@127.0.0.1:1885"
    assert "pw" not in str(body)
