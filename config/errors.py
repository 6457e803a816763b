"""The project's exception tree.

FleetError            base of every error this project raises on purpose
+-- ConfigError       a setting or config value is wrong (names the key)
+-- PayloadError      an MQTT message breaks the wire contract (carries a short reason code)
+-- RequestError      an HTTP request is invalid (carries the HTTP status to answer with)
"""

from __future__ import annotations


class FleetError(Exception):
    """Base class of every deliberate error in the fleet."""


class ConfigError(FleetError):
    """A setting is missing or malformed; the message names the key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


class PayloadError(FleetError):
    """An MQTT topic or payload does not follow the wire contract."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class RequestError(FleetError):
    """An HTTP request cannot be served; answered as JSON with ``status``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
