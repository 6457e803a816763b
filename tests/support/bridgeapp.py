"""The bridge app under the Flask test client (no MQTT, no disk): shared by the unit tests of its routes."""

from __future__ import annotations

from flask import Flask

from bridge.http.app import create_app
from bridge.http.ratelimit import RateLimit
from bridge.http.state import STATE, AppState
from bridge.runtime import BridgeRuntime
from bridge.services.state import BridgeState
from config.settings import Settings


def memory_app(settings: Settings, setup_limit: RateLimit | None = None) -> Flask:
    """The app serving a runtime with no broker and no disk (``BridgeRuntime.in_memory``), not started."""
    return create_app(settings, BridgeRuntime.in_memory(settings), setup_limit=setup_limit)


def state(app: Flask) -> BridgeState:
    """The app's core resources (history, ingest, baselines, the subscriber)."""
    return STATE.get(app).core


def app_state(app: Flask) -> AppState:
    """The app's whole state: the runtime plus the HTTP layer's sessions, event cache and telemetry."""
    return STATE.get(app)
