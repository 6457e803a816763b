"""A window's JSON document (pure): what an SSE window event carries and what republishing extends.

Values are mean kW per channel over the half-open window ``[window_start, window_end)`` (``null`` for a channel with
no sample), timestamps are UTC (``config.wire.format_ts``), ``status`` the colour of each channel and ``level`` the
worst of them (``bridge.services.baseline.window_status``).
"""

from __future__ import annotations

from bridge.windows.aggregate import Window
from config.wire import format_ts


def window_document(window: Window, status: dict[str, str], level: str) -> dict[str, object]:
    """The JSON object of one window event."""
    return {
        "household": window.meter,
        "interval": window.interval_s,
        "window_start": format_ts(window.start),
        "window_end": format_ts(window.end),
        **window.values(),
        "samples": window.samples,
        "status": status,
        "level": level,
    }
