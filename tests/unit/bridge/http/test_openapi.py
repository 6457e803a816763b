"""bridge.http.openapi: a valid OpenAPI 3.1 document, served as written, documenting exactly the app's routes.

If a route is added without documenting it (or documented without serving it), ``test_documents_every_route``
fails with the operations that differ.
"""

from __future__ import annotations

import copy
import re

import schemathesis
from flask import Flask
from flask.testing import FlaskClient

from bridge.http.openapi import DOCUMENT

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
AUTOMATIC = {"HEAD", "OPTIONS"}  # Flask adds both to every route; HEAD is GET without a body


def openapi_path(rule: str) -> str:
    """``/static/<path:filename>`` -> ``/static/{filename}``."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def served(app: Flask) -> dict[str, set[str]]:
    paths: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        paths.setdefault(openapi_path(rule.rule), set()).update(m.lower() for m in rule.methods or ())
    return paths


def documented() -> dict[str, set[str]]:
    return {path: {m for m in item if m in HTTP_METHODS} for path, item in DOCUMENT["paths"].items()}


def differences(app: Flask) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(served but undocumented, documented but not served) operations; automatic HEAD and OPTIONS left out."""
    routes = served(app)
    explicit = {(path, m) for path, methods in routes.items() for m in methods if m.upper() not in AUTOMATIC}
    docs = {(path, m) for path, methods in documented().items() for m in methods if m != "options"}
    return explicit - docs, docs - explicit


def test_documents_every_route(app: Flask) -> None:
    undocumented, unserved = differences(app)
    assert undocumented == set(), "served but not documented in bridge/http/openapi.py"
    assert unserved == set(), "documented in bridge/http/openapi.py but not served"


def test_an_undocumented_route_is_caught(app: Flask) -> None:
    app.add_url_rule("/items/<int:item>", "items", lambda item: str(item), methods=["GET", "DELETE"])
    assert differences(app) == ({("/items/{item}", "get"), ("/items/{item}", "delete")}, set())


def test_documented_preflights_are_served(app: Flask) -> None:
    routes = served(app)
    for path, methods in documented().items():
        if "options" in methods:
            assert "options" in routes[path]


def test_is_valid_openapi_31() -> None:
    schema = schemathesis.openapi.from_dict(copy.deepcopy(DOCUMENT))
    schema.validate()  # against the OpenAPI 3.1 meta-schema
    assert DOCUMENT["openapi"].startswith("3.1.")


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def test_every_reference_resolves() -> None:
    refs = _refs(DOCUMENT)
    assert refs
    for ref in refs:
        node: object = DOCUMENT
        assert ref.startswith("#/")
        for part in ref[2:].split("/"):
            assert isinstance(node, dict)
            assert part in node, ref
            node = node[part]


def test_every_error_is_the_json_error_shape() -> None:
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            if method != "options":
                assert "405" in responses, f"{method} {path}"
            for status, response in responses.items():
                if int(status) < 400:
                    continue
                if "$ref" in response:
                    response = DOCUMENT["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
                assert list(response["content"]) == ["application/json"], f"{status} of {method} {path}"


def test_served_as_written(client: FlaskClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == DOCUMENT


def test_documented_constants_are_what_the_app_does(client: FlaskClient) -> None:
    """The body limit and the setup's answer the document states are what the app does."""
    too_large = DOCUMENT["components"]["responses"]["TooLarge"]["description"]
    limit = int(re.search(r"over (\d+) bytes", too_large).group(1))  # type: ignore[union-attr]
    at_limit = client.post("/stream_setup", data=b" " * limit, content_type="application/json")
    assert at_limit.status_code == 400  # read and refused as JSON, not as too large
    over = client.post("/stream_setup", data=b" " * (limit + 1), content_type="application/json")
    assert over.status_code == 413
    setup = client.post("/stream_setup", json={"household": "A", "interval": 5})
    assert setup.status_code == 200
    assert setup.get_json()["status"] == DOCUMENT["components"]["schemas"]["Setup"]["properties"]["status"]["const"]


def test_refusals_of_a_setup_are_documented() -> None:
    """429 (with Retry-After) on a setup, the expired stream's 404 on the GETs, and OPTIONS' JSON answer."""
    setup = DOCUMENT["paths"]["/stream_setup"]
    assert setup["post"]["responses"]["429"] == {"$ref": "#/components/responses/TooManyRequests"}
    too_many = DOCUMENT["components"]["responses"]["TooManyRequests"]
    assert too_many["headers"]["Retry-After"]["required"] is True
    assert "Stream expired: set up again." in DOCUMENT["components"]["responses"]["NotFound"]["description"]
    for path in ("/stream_qstats", "/stream_data"):
        assert "404" in DOCUMENT["paths"][path]["get"]["responses"]
    assert list(setup["options"]["responses"]["200"]["content"]) == ["application/json"]
