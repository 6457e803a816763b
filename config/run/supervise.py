"""Run the processes of a Procfile in the foreground; one that exits does not stop the others.

    python -m config.run.supervise [--kill-after SECONDS] [Procfile]

What ``make up`` and ``make cluster`` run (honcho, which they ran before, stops every process as soon as one exits).
Each line of each process's output is printed with the time and its name, ``HH:MM:SS meter-a | ...``; the
supervisor's own lines are ``system``'s. A process that exits is logged, and the others keep running; SIGINT (Ctrl-C)
or SIGTERM to the supervisor stops them all: SIGTERM to each, again on a second signal, SIGKILL to what is left after
``config.run.procfile.KILL_AFTER_S``. Decisions are ``config.run.procfile.Supervision``'s; this is the I/O around it.

Each process runs as ``/bin/sh -c <command>`` in a session of its own (so Ctrl-C at the terminal reaches only the
supervisor, which stops them in order), and its signals go to its process group (gunicorn's master and its worker).
One thread: a selector over the processes' output and the signal wake-up socket, which also polls for exits.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from config.errors import ConfigError
from config.parsing import parse_float_in
from config.run.procfile import KILL_AFTER_S, ProcEntry, Supervision, parse_procfile

SYSTEM = "system"
POLL_S = 0.2  # how often exits are looked for when no output comes
DRAIN_S = 1.0  # after the last exit: output still in the pipes (a grandchild may hold one open: not longer)
READ_BYTES = 65_536
MAX_LINE_BYTES = 65_536  # a longer line (or output without a newline) is printed in pieces of this size


class Printer:
    """Prefixes each line with the time and the process's name."""

    def __init__(self, names: Sequence[str], out: TextIO = sys.stdout) -> None:
        self.width = max(len(name) for name in [*names, SYSTEM])
        self.out = out

    def line(self, name: str, text: str) -> None:
        """Print one line of ``name``'s output."""
        stamp = time.strftime("%H:%M:%S")
        with contextlib.suppress(BrokenPipeError, ValueError):  # a closed terminal or pipe: the processes go on
            self.out.write(f"{stamp} {name.ljust(self.width)} | {text}\n")
            self.out.flush()


class Child:
    """One process of the Procfile and what is left of its last, unfinished output line."""

    def __init__(self, entry: ProcEntry) -> None:
        self.name = entry.name
        self.popen = subprocess.Popen(
            ["/bin/sh", "-c", entry.command],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        assert self.popen.stdout is not None
        self.stdout = self.popen.stdout
        os.set_blocking(self.stdout.fileno(), False)
        self.partial = b""

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the process's group (its session)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signum)


class Supervisor:
    """The processes, their output, and the signals that stop them."""

    def __init__(
        self, entries: Sequence[ProcEntry], out: TextIO = sys.stdout, kill_after_s: float = KILL_AFTER_S
    ) -> None:
        self.entries = entries
        self.printer = Printer([entry.name for entry in entries], out)
        self.supervision = Supervision([entry.name for entry in entries], kill_after_s)
        self.children: dict[str, Child] = {}
        self.selector = selectors.DefaultSelector()
        self.signals: list[int] = []  # appended by the handler: no lock, so nothing it could deadlock on

    def _handle(self, signum: int, frame: object) -> None:
        self.signals.append(signum)

    def run(self) -> int:
        """Start every process, supervise them until none is left; the exit code."""
        wake_read, wake_write = socket.socketpair()
        wake_read.setblocking(False)
        wake_write.setblocking(False)
        self.selector.register(wake_read, selectors.EVENT_READ, None)
        previous = signal.set_wakeup_fd(wake_write.fileno(), warn_on_full_buffer=False)
        handlers = {signum: signal.signal(signum, self._handle) for signum in (signal.SIGINT, signal.SIGTERM)}
        try:
            for entry in self.entries:
                child = self.children[entry.name] = Child(entry)
                self.selector.register(child.stdout, selectors.EVENT_READ, child)
                self.printer.line(SYSTEM, f"{entry.name} started (pid={child.popen.pid})")
            while not self.supervision.finished:
                self._pass(wake_read)
            self._drain(time.monotonic() + DRAIN_S, wake_read)
        finally:
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
            signal.set_wakeup_fd(previous)
            self.selector.close()
            wake_read.close()
            wake_write.close()
        code = self.supervision.exit_code()
        self.printer.line(SYSTEM, f"every process stopped (exit code {code})")
        return code

    def _pass(self, wake: socket.socket) -> None:
        self._read(POLL_S, wake)
        now = time.monotonic()
        while self.signals:
            signum = self.signals.pop(0)
            names = self.supervision.stop(now)
            self.printer.line(
                SYSTEM,
                f"{signal.Signals(signum).name}: stopping {', '.join(names)} (SIGTERM; SIGKILL to what is left "
                f"after {self.supervision.kill_after_s:g} s)",
            )
            for name in names:
                self.children[name].signal(signal.SIGTERM)
        for name in list(self.supervision.running):
            code = self.children[name].popen.poll()
            if code is not None:
                self._flush(self.children[name])
                self.printer.line(SYSTEM, self.supervision.exited(name, code))
        for name in self.supervision.overdue(now):
            child = self.children[name]
            self.printer.line(SYSTEM, f"sending SIGKILL to {name} (pid {child.popen.pid})")
            child.signal(signal.SIGKILL)

    def _read(self, timeout: float, wake: socket.socket) -> None:
        """Print what the processes wrote within ``timeout`` (returns at once on a signal)."""
        for key, _ in self.selector.select(timeout):
            if key.data is None:
                with contextlib.suppress(BlockingIOError):
                    wake.recv(64)
                continue
            child: Child = key.data
            try:
                data = os.read(child.stdout.fileno(), READ_BYTES)
            except BlockingIOError:
                continue
            if not data:  # end of output: the process (and whatever shared its output) is gone
                self.selector.unregister(child.stdout)
                child.stdout.close()
                self._flush(child)
                continue
            *lines, child.partial = (child.partial + data).split(b"\n")
            while len(child.partial) > MAX_LINE_BYTES:  # memory per process stays bounded
                lines.append(child.partial[:MAX_LINE_BYTES])
                child.partial = child.partial[MAX_LINE_BYTES:]
            for line in lines:
                self.printer.line(child.name, line.decode("utf-8", "replace").rstrip("\r"))

    def _flush(self, child: Child) -> None:
        if child.partial:
            self.printer.line(child.name, child.partial.decode("utf-8", "replace"))
            child.partial = b""

    def _drain(self, until: float, wake: socket.socket) -> None:
        """Print the output still in the pipes of processes that exited, until each pipe ends or ``until``."""
        while len(self.selector.get_map()) > 1 and time.monotonic() < until:
            self._read(max(0.0, until - time.monotonic()), wake)
        for child in self.children.values():
            self._flush(child)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: ``python -m config.run.supervise [--kill-after SECONDS] [Procfile]``; 2 for bad arguments or a bad
    Procfile."""
    parser = argparse.ArgumentParser(prog="python -m config.run.supervise", description=__doc__.split("\n\n")[0])
    parser.add_argument("procfile", nargs="?", default="Procfile", help="the Procfile (default ./Procfile)")
    parser.add_argument(
        "--kill-after",
        metavar="SECONDS",
        default=str(KILL_AFTER_S),
        help=f"SIGKILL to what still runs this long after a stop (default {KILL_AFTER_S:g})",
    )
    args = parser.parse_args(argv)
    path = Path(args.procfile)
    try:
        kill_after_s = parse_float_in(args.kill_after, "--kill-after", 0.0, 3600.0)
        entries = parse_procfile(path.read_text(encoding="utf-8"), str(path))
    except OSError as exc:
        print(f"supervise: cannot read {path}: {exc}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"supervise: configuration error: {exc}", file=sys.stderr)
        return 2
    return Supervisor(entries, kill_after_s=kill_after_s).run()


if __name__ == "__main__":
    sys.exit(main())
