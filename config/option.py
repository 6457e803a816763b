"""One ``FLEET_*`` setting's declaration (``Option``) and the programs that read settings (broker, simulator, bridge);
the table of every setting is ``config.options``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

BROKER: Final = "broker"
SIMULATOR: Final = "simulator"
BRIDGE: Final = "bridge"
PROGRAMS: Final = (BROKER, SIMULATOR, BRIDGE)


@dataclass(frozen=True, slots=True)
class Option:
    """One ``FLEET_*`` setting: its key, the ``Settings`` field it fills, how its text is parsed (``parse(text,
    key)``, raising a ``ConfigError`` naming ``key``), its default (an unset or blank variable), what it means, and
    which programs read it (``python -m broker``, ``python -m simulator``, ``python -m bridge``).

    ``shown``: the default as help and README show it, when the value itself does not say it (a derived default)."""

    key: str
    field: str
    parse: Callable[[str, str], Any]
    default: Any
    help: str
    readers: frozenset[str]
    shown: str = ""

    def default_text(self) -> str:
        """The default as the help shows it."""
        if self.shown:
            return self.shown
        value = self.default
        if value is None or value == "":
            return "none"
        if isinstance(value, bool):
            return str(value).lower()
        if isinstance(value, float):
            return f"{value:g}"
        if isinstance(value, tuple):
            return ",".join(str(part) for part in value) or "none"
        return str(value)

    def describe(self) -> str:
        """``help (default ...)``: one line of the help text."""
        return f"{self.help} (default {self.default_text()})"
