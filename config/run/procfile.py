"""A Procfile and what a supervisor of its processes does when one exits or a stop is asked (pure: no process, no
clock; times are arguments).

Procfile: one process a line, ``name: command`` (name of ``A-Za-z0-9_-``; the command is run by ``/bin/sh -c``), blank
lines and ``#`` comments ignored. ``Supervision`` decides, for ``config.run.supervise``:

- a process that exits on its own is logged and the others keep running (``make up``: a user who stops meter A to
  watch Home Assistant mark it unavailable keeps B, C, the bridge and the broker);
- a stop (SIGINT or SIGTERM to the supervisor) sends each running process SIGTERM, a second stop sends it again (the
  embedded broker and gunicorn stop at once on a second one), and whatever still runs ``kill_after_s`` after the first
  gets SIGKILL, once;
- the supervisor is done when no process is left. Its exit code: after a stop, 0 unless a process had to be killed
  (each process's own code is logged: nats-server exits 1 after a clean SIGTERM shutdown); when the processes all
  exited on their own, 0 if every one exited with 0, else 1.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from config.errors import ConfigError

KILL_AFTER_S: Final = 10.0  # the broker waits 1 s (+2 s for leftovers), a meter 3 s to flush, gunicorn's workers 5 s
_LINE = re.compile(r"^([A-Za-z0-9_-]+):\s*(\S.*)$")


@dataclass(frozen=True, slots=True)
class ProcEntry:
    """One line of a Procfile: the process's name and its shell command."""

    name: str
    command: str


def parse_procfile(text: str, source: str = "Procfile") -> tuple[ProcEntry, ...]:
    """The processes of a Procfile, in order; a line that is not ``name: command`` or a name given twice is a
    ``ConfigError`` naming ``source:line``."""
    entries: list[ProcEntry] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise ConfigError(f"{source}:{number}", f"expected 'name: command', got {line!r}")
        name, command = match.group(1), match.group(2).strip()
        if any(entry.name == name for entry in entries):
            raise ConfigError(f"{source}:{number}", f"process {name!r} is given twice")
        entries.append(ProcEntry(name, command))
    if not entries:
        raise ConfigError(source, "no process in it")
    return tuple(entries)


@dataclass
class Supervision:
    """The state of a set of supervised processes: which run, how they ended, and whether a stop was asked."""

    names: Sequence[str]
    kill_after_s: float = KILL_AFTER_S
    running: list[str] = field(init=False)
    codes: dict[str, int] = field(init=False, default_factory=dict)
    stopping_since: float | None = field(init=False, default=None)
    killed: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        if len(set(self.names)) != len(self.names):
            raise ValueError("process names must be unique")
        self.running = list(self.names)

    @property
    def finished(self) -> bool:
        """No process is left."""
        return not self.running

    def exited(self, name: str, code: int) -> str:
        """Record that ``name`` exited with ``code`` (negative: killed by that signal); the line to log."""
        if name not in self.running:
            raise ValueError(f"{name!r} is not running")
        self.running.remove(name)
        self.codes[name] = code
        line = f"{name} exited (rc={code})"
        if self.stopping_since is not None:
            return line
        if not self.running:
            return f"{line}; no process left"
        return f"{line}; {', '.join(self.running)} keep running"

    def stop(self, now: float) -> list[str]:
        """A stop was asked at ``now``: the processes to send SIGTERM (all that run, again on a second stop)."""
        if self.stopping_since is None:
            self.stopping_since = now
        return list(self.running)

    def overdue(self, now: float) -> list[str]:
        """The processes to send SIGKILL at ``now``: those running ``kill_after_s`` after the first stop (once)."""
        if self.stopping_since is None or self.killed or now - self.stopping_since < self.kill_after_s:
            return []
        self.killed = True
        return list(self.running)

    def exit_code(self) -> int:
        """After a stop: 1 if a process had to be killed, else 0; without one: 0 if every process exited with 0."""
        if self.stopping_since is not None:
            return 1 if self.killed else 0
        return 0 if all(code == 0 for code in self.codes.values()) else 1
