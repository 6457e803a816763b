"""bridge.http.app and bridge.http.state: create_app wires a runtime it never starts; per-app state through one typed
key; gunicorn's worker exit (bridge.http.server) stops the runtime."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
from flask import Flask

from bridge.http.app import create_app
from bridge.http.server import _worker_exit
from bridge.http.state import STATE, AppKey, AppState
from bridge.runtime import BridgeRuntime, Part
from config.settings import load_settings


def test_serves_the_runtime_it_is_given_and_does_not_start_it() -> None:
    settings = load_settings({"FLEET_GRACE_S": "3"})
    runtime = BridgeRuntime.in_memory(settings)
    app = create_app(settings, runtime)
    state = STATE.get(app)
    assert state.runtime is runtime
    assert state.core is runtime.state
    assert runtime.running() == []  # its owner starts it (bridge.http.server, in the worker)
    assert app.test_client().get("/dashboard/households").get_json()["grace_s"] == 3


def test_without_a_runtime_it_serves_one_in_memory() -> None:
    app = create_app(load_settings({"FLEET_HOUSEHOLDS": "A,B"}))
    state = STATE.get(app)
    assert state.core.subscriber is None
    assert state.core.history.store is None
    assert state.runtime.running() == []
    assert app.test_client().get("/", query_string={"format": "json"}).get_json()["households"] == ["A", "B"]


def test_settings_other_than_the_runtime_s_are_refused() -> None:
    settings = load_settings({})
    runtime = BridgeRuntime.in_memory(settings)
    assert STATE.get(create_app(None, runtime)).core.settings is settings  # settings may be left out
    with pytest.raises(ValueError, match="differ"):
        create_app(dataclasses.replace(settings, grace_s=settings.grace_s + 1), runtime)


def test_each_app_has_its_own_state() -> None:
    first, second = create_app(load_settings({})), create_app(load_settings({}))
    assert STATE.get(first) is not STATE.get(second)
    assert STATE.get(first).sessions is not STATE.get(second).sessions


def test_app_key_checks_what_it_returns() -> None:
    key = AppKey("test_key", int)
    app = Flask(__name__)
    with pytest.raises(LookupError, match="test_key"):
        key.get(app)  # nothing there
    key.set(app, 5)
    assert key.get(app) == 5
    app.extensions["test_key"] = "5"  # someone wrote it by hand, as the wrong type
    with pytest.raises(LookupError, match="holds no int"):
        key.get(app)
    assert isinstance(STATE.get(create_app(load_settings({}))), AppState)


def test_gunicorn_s_worker_exit_stops_the_app_s_runtime_in_reverse() -> None:
    stopped: list[str] = []
    settings = load_settings({})
    parts = [Part(name, lambda: None, lambda name=name: stopped.append(name)) for name in ("store", "subscriber")]
    runtime = BridgeRuntime(BridgeRuntime.in_memory(settings).state, parts)
    runtime.start()
    worker = SimpleNamespace(wsgi=create_app(settings, runtime))
    _worker_exit(None, worker)
    assert stopped == ["subscriber", "store"]
    _worker_exit(None, worker)  # once only
    assert stopped == ["subscriber", "store"]
    _worker_exit(None, SimpleNamespace())  # a worker that never built its app: nothing to stop, no error
