"""A minimal Server-Sent Events client over a real socket (http.client), with timeouts."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass, field


@dataclass
class Event:
    """One SSE event (or a comment, if ``comment`` is set)."""

    data: str = ""
    id: str | None = None
    event: str | None = None
    retry: int | None = None
    comments: list[str] = field(default_factory=list)

    def json(self) -> dict[str, object]:
        """The data field as a JSON object."""
        parsed = json.loads(self.data)
        assert isinstance(parsed, dict)
        return parsed


class SSEClient:
    """GET ``path`` and read events; every read times out after ``timeout`` s."""

    def __init__(
        self,
        port: int,
        path: str,
        timeout: float = 10.0,
        headers: dict[str, str] | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.conn = http.client.HTTPConnection(host, port, timeout=timeout)
        self.conn.request("GET", path, headers=headers or {})
        self.response = self.conn.getresponse()
        self.status = self.response.status
        self.headers = dict(self.response.getheaders())

    def next_event(self, include_comments: bool = False) -> Event:
        """The next complete event (a block ended by a blank line)."""
        event = Event()
        data_lines: list[str] = []
        seen_field = False
        while True:
            raw = self.response.readline()
            if raw == b"":
                raise EOFError("stream closed")
            line = raw.decode("utf-8").rstrip("\r\n")
            if line == "":
                if seen_field and (data_lines or event.retry is not None or include_comments):
                    event.data = "\n".join(data_lines)
                    return event
                continue
            seen_field = True
            if line.startswith(":"):
                event.comments.append(line[1:].strip())
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data_lines.append(value)
            elif name == "id":
                event.id = value
            elif name == "event":
                event.event = value
            elif name == "retry":
                event.retry = int(value)

    def next_data_event(self) -> Event:
        """The next event that carries data (skips retry-only blocks and heartbeats)."""
        while True:
            event = self.next_event()
            if event.data:
                return event

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()
