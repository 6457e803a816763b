"""Simulator unit-test fixtures: an environment without ``FLEET_*`` settings, for the tests that load settings."""

from __future__ import annotations

import os

import pytest


@pytest.fixture
def no_fleet_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No FLEET_* setting leaks in from the environment running the tests (requested, not autouse: most tests here
    never read the environment)."""
    for key in [k for k in os.environ if k.startswith("FLEET_")]:
        monkeypatch.delenv(key)
