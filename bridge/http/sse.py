"""Server-Sent Events framing (pure): turns windows into the bytes of an ``text/event-stream``.

Event data is one line of JSON. ``legacy_data`` reproduces the original line ``{...} status: {...}`` with valid JSON on
both sides of `` status: `` (the original emitted Python reprs and bare NaN).
"""

from __future__ import annotations

import json
import re
from typing import Final

from bridge.windows.aggregate import Window
from bridge.windows.document import window_document

RETRY_MS: Final = 3000
_LINE_BREAK: Final = re.compile(r"\r\n|\r|\n")  # the line ends SSE knows; each line gets its own data: field


def frame(data: str, event_id: str | None = None, event: str | None = None) -> bytes:
    """One SSE event; each line of ``data`` (split at CRLF, CR or LF) gets its own ``data:`` field."""
    lines = []
    if event is not None:
        lines.append(f"event: {_one_line(event)}")
    if event_id is not None:
        lines.append(f"id: {_one_line(event_id)}")
    lines.extend(f"data: {line}" for line in _LINE_BREAK.split(data))
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def retry(ms: int = RETRY_MS) -> bytes:
    """The reconnection delay field, sent first."""
    return f"retry: {int(ms)}\n\n".encode()


def comment(text: str) -> bytes:
    """A comment line (heartbeat); clients ignore it, proxies see traffic."""
    return f": {_one_line(text)}\n\n".encode()


def _one_line(text: str) -> str:
    return text.replace("\r", " ").replace("\n", " ")


def window_data(window: Window, status: dict[str, str], level: str) -> str:
    """One line of JSON for a window event."""
    return json.dumps(window_document(window, status, level), allow_nan=False, separators=(",", ":"))


def legacy_data(window: Window, status: dict[str, str]) -> str:
    """The original event line: ``{"AC": 1.5, ...} status: {"AC": "Yellow", ...}``, each side valid JSON."""
    return f"{json.dumps(window.values(), allow_nan=False)} status: {json.dumps(status)}"
