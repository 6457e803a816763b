"""Schemathesis against a live bridge (gunicorn + gevent, real socket, amqtt, meters at 60x): every generated request
is answered as ``bridge.http.openapi`` documents it, with no server error and errors always JSON.

``/stream_data`` never ends, so it is read, not excluded: schemathesis reads an event stream until ``max-stream-events``
events or the request timeout, then checks the status, the content type and each event it read against the document
(the window JSON inside ``data`` through ``contentSchema``). The bridge heartbeats every second so a stream with no
event due yet still ends its read at the timeout.
"""

from __future__ import annotations

import copy
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from bridge.http.openapi import DOCUMENT
from tests.support.procs import LOOPBACK, start_bridge, start_broker, start_meters
from tests.support.sse import SSEClient

pytestmark = pytest.mark.integration

MAX_EXAMPLES = 30  # per operation and phase: the whole run stays well under a minute
STREAM_TIMEOUT_S = 2.0  # the longest read of one event stream (the bridge heartbeats every second)

CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": True},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": False},
        },
        "request-timeout": 10,
        "max-stream-events": 3,
        "operations": [
            {"include-path": "/stream_data", "request-timeout": STREAM_TIMEOUT_S},
            {  # 503 is this route's documented "warming up", not a server error
                "include-path": "/stream_qstats",
                "checks": {"not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "503"]}},
            },
        ],
    }
)
SCHEMA = schemathesis.openapi.from_dict(copy.deepcopy(DOCUMENT), config=CONFIG)


def errors_are_json(ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case) -> None:
    """Every 4xx and 5xx is ``application/json`` ``{"error": "..."}``, whatever the route or method."""
    if response.status_code < 400:
        return
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.split(";")[0].strip() == "application/json", f"{response.status_code} as {content_type!r}"
    body = json.loads(response.content)
    assert isinstance(body, dict)
    assert isinstance(body.get("error"), str)
    assert body["error"]


# Not positive_data_acceptance: OpenAPI cannot say that household and interval go together, so a valid-looking
# request may rightly get a 400. Not negative_data_rejection: the Last-Event-ID header wins over ?last_event_id= (a
# browser's EventSource sends the header), so a bad query value beside a good header is ignored by design.
# unsupported_method: any other method gets a JSON 405 with Allow.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    unsupported_method,
    errors_are_json,
]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A bridge serving live data: amqtt, the bridge, meters A, B and C at 60x (D is configured but silent)."""
    logs: Path = tmp_path_factory.mktemp("schemathesis")
    broker = start_broker("amqtt", logs)
    bridge = meters = None
    try:
        env = {"FLEET_HOUSEHOLDS": "A,B,C,D", "FLEET_HEARTBEAT_S": "1"}
        bridge = start_bridge(broker.port or 0, logs, env=env)
        meters = start_meters(broker.port or 0, ["A", "B", "C"], logs, speed=60.0, start_at="05:59:00")
        url = f"http://{LOOPBACK}:{bridge.port}"
        _wait_for_statistics(bridge.port or 0, url)
        yield url
    finally:
        stopped = [(proc, proc.stop()) for proc in (meters, bridge, broker) if proc is not None]
        for proc, code in stopped:
            assert code == 0, f"{proc.name} exited with {code}:\n{proc.log()[-3000:]}"


def _wait_for_statistics(port: int, url: str, max_events: int = 200) -> None:
    """Until A's 5 s statistics are ready (so 200s get checked, not only 503s), waiting on live window events."""
    stream = SSEClient(port, "/stream_data?household=A&interval=5&pace=none", timeout=20)
    try:
        for _ in range(max_events):
            stream.next_event()
            try:
                with urllib.request.urlopen(f"{url}/stream_qstats?household=A&interval=5", timeout=10) as response:
                    if response.status == 200:
                        return
            except urllib.error.HTTPError as err:
                err.close()
                if err.code != 503:
                    raise
        raise TimeoutError(f"no statistics for A after {max_events} window events")
    finally:
        stream.conn.close()


@SCHEMA.parametrize()
def test_live_bridge_conforms(case: schemathesis.Case, base_url: str) -> None:
    case.call_and_validate(base_url=base_url, checks=CHECKS)
