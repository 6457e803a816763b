"""Unit-test fixtures: the bridge app built by its factory, without MQTT and without disk."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from bridge.http.app import create_app
from bridge.runtime import BridgeRuntime
from config.settings import load_settings


@pytest.fixture
def app() -> Flask:
    """A fresh bridge app per test (default settings, an in-memory runtime: no broker, no SQLite; not started)."""
    settings = load_settings({})
    return create_app(settings, BridgeRuntime.in_memory(settings))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """Flask's test client of ``app``."""
    return app.test_client()
