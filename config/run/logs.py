"""Logging set-up shared by the entry points (one line per record, process name first)."""

from __future__ import annotations

import logging
import sys


def configure_logging(level: str, name: str) -> None:
    """Log to stderr as ``<name> LEVEL logger: message``, at ``level``."""
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format=f"%(asctime)s {name} %(levelname)s %(name)s: %(message)s",
        force=True,
    )
