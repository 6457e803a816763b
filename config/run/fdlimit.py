"""The process's limit on open file descriptors (``RLIMIT_NOFILE``), which bounds its sockets.

Every socket is a descriptor: the simulator holds one per meter, the bridge one per HTTP client (SSE streams stay
open). Linux starts most processes with a soft limit of 1,024 and lets a process raise its own soft limit up to the
hard limit (commonly 524,288 under systemd, 1,048,576 under docker; whatever ``ulimit -Hn`` says). So both programs
raise the soft limit to the hard limit at start-up (``raise_soft_limit``, one INFO line: old -> new), and the simulator
checks before it connects anything that its fleet fits (``check_fits``), rather than failing on the 1,021st meter.

``target`` and ``check_fits`` are pure; only ``raise_soft_limit`` reads and changes the process's limit.
"""

from __future__ import annotations

import logging
import resource
from dataclasses import dataclass
from typing import Final

from config.errors import ConfigError

HOW_TO_RAISE: Final = (
    "raise the soft limit with `ulimit -n N` in the shell that starts it (up to the hard limit, `ulimit -Hn`), or the "
    "hard limit itself: `nofile` in /etc/security/limits.conf, LimitNOFILE= in a systemd unit, `--ulimit nofile=N:N` "
    "with docker run or `ulimits: nofile:` in docker compose"
)


@dataclass(frozen=True, slots=True)
class FdLimit:
    """The soft limit before and after start-up, and the hard limit (``resource.RLIM_INFINITY`` for none)."""

    before: int
    soft: int
    hard: int


def target(soft: int, hard: int) -> int:
    """The soft limit to ask for: the hard limit when it is finite; else the current soft limit (Linux refuses an
    infinite soft limit for descriptors, and the ceiling then is the kernel's ``nr_open``, not known here)."""
    if soft == resource.RLIM_INFINITY or hard == resource.RLIM_INFINITY:
        return soft
    return max(soft, hard)


def raise_soft_limit(log: logging.Logger) -> FdLimit:
    """Raise this process's soft ``RLIMIT_NOFILE`` to the hard limit where the system allows it; log old -> new."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = target(soft, hard)
    new = soft
    if wanted != soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            new = wanted
        except (ValueError, OSError) as exc:  # a sandbox or a container that forbids it: keep what there is
            log.warning("open-file limit (RLIMIT_NOFILE): could not raise %d to %d: %s", soft, wanted, exc)
    log.info("open-file limit (RLIMIT_NOFILE): soft %s -> %s (hard %s)", _show(soft), _show(new), _show(hard))
    return FdLimit(before=soft, soft=new, hard=hard)


def check_fits(needed: int, limit: int, key: str, what: str) -> None:
    """Raise ``ConfigError(key)`` unless ``needed`` descriptors (``what`` says for what) fit under ``limit``."""
    if limit == resource.RLIM_INFINITY or needed <= limit:
        return
    raise ConfigError(
        key,
        f"needs {needed} open files ({what}) but this process may open only {limit} "
        f"(RLIMIT_NOFILE, already raised to the hard limit where allowed); {HOW_TO_RAISE}",
    )


def _show(limit: int) -> str:
    return "unlimited" if limit == resource.RLIM_INFINITY else str(limit)
