"""The optional parts of the install (pyproject.toml's extras) and the error that names the one a command lacks.

The runtime dependencies are what the containers run (meters, bridge, ``python -m broker mosquitto-auth``). A command
that needs more imports it late and calls ``require`` first, so a missing package is a ``ConfigError`` that names the
option or command and the extra to install, not a traceback.
"""

from __future__ import annotations

import importlib
from typing import Final

from config.errors import ConfigError

DISTRIBUTION: Final = "smart-meter-fleet"
EMBEDDED: Final = "embedded"  # python -m broker (serve): amqtt
DATASET: Final = "dataset"  # python -m simulator generate --format parquet: pyarrow; the progress bar: tqdm
PLOT: Final = "plot"  # python -m simulator plot: matplotlib


def install_hint(extra: str) -> str:
    """The pip command that installs ``extra`` of this project."""
    return f"pip install '{DISTRIBUTION}[{extra}]'"


def require(module: str, extra: str, key: str) -> None:
    """Import ``module``, or raise a ``ConfigError`` naming ``key`` and the extra that provides it."""
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(key, f"needs {module}, which is not installed: {install_hint(extra)}") from exc
