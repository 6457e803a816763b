"""bridge.windows.document: a window's JSON object, as SSE window events and the republished aggregates carry it."""

from __future__ import annotations

import json

import numpy as np

from bridge.windows.aggregate import make_window
from bridge.windows.document import window_document

T0 = 1_704_067_200  # 2024-01-01T00:00:00Z


def test_a_window_as_json() -> None:
    samples = np.full((5, 3), np.nan)  # kW per second of [T0, T0 + 5): two seconds received
    samples[0], samples[3] = (1.0, 2.0, 3.0), (3.0, 4.0, 5.0)
    window = make_window("A", 5, T0, T0 + 5, samples, present=2)
    status = {"AC": "Green", "Geyser": "Yellow", "Overall": "Red"}
    doc = window_document(window, status, "Red")
    assert doc == {
        "household": "A",
        "interval": 5,
        "window_start": "2024-01-01T00:00:00Z",
        "window_end": "2024-01-01T00:00:05Z",
        "AC": 2.0,
        "Geyser": 3.0,
        "Overall": 4.0,
        "samples": 2,
        "status": status,
        "level": "Red",
    }
    assert json.loads(json.dumps(doc, allow_nan=False)) == doc


def test_an_empty_window_has_null_values() -> None:
    window = make_window("A", 5, T0, T0 + 5, np.full((5, 3), np.nan), present=0)
    doc = window_document(window, {}, "Green")
    assert (doc["AC"], doc["Geyser"], doc["Overall"], doc["samples"]) == (None, None, None, 0)
