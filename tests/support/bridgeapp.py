"""The bridge app under the Flask test client (no MQTT, no disk): shared by the unit tests of its routes."""

from __future__ import annotations

from flask import Flask

from bridge.services.state import BridgeState


def state(app: Flask) -> BridgeState:
    """The app's resources (history, ingest, sessions, baselines, telemetry)."""
    fleet: BridgeState = app.extensions["fleet"]
    return fleet
