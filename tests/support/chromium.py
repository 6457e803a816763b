"""Headless Chromium for integration tests: load a page, let it run, return its DOM (and a screenshot).

No DevTools client: ``--dump-dom`` with ``--virtual-time-budget``. Virtual time stands still while a request is in
flight, and an open EventSource is one, so a page that streams is dumped only once it has closed its streams: the
dashboard does that itself with ``?selftest=K``. Every run is bounded by a wall-clock timeout that kills Chromium's
whole process group.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

FLAGS = (
    "--headless",
    "--no-sandbox",  # tests run as root in containers, where the sandbox cannot start
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
    "--enable-logging=stderr",  # the page's console (uncaught errors, CSP violations) goes to stderr: tests read it
    "--v=0",
)
CANDIDATES = ("chromium", "chromium-browser")
VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"})


def chromium_binary() -> str | None:
    """Path of a Chromium binary, or None."""
    for name in CANDIDATES:
        found = shutil.which(name)
        if found is not None:
            return found
    return None


def chromium_missing() -> str | None:
    """Why Chromium tests cannot run here, or None."""
    if chromium_binary() is None:
        return "Chromium not installed: apt-get install -y chromium"
    return None


def chromium_version() -> str:
    """``Chromium 1xx.y.z ...`` (for messages)."""
    binary = chromium_binary()
    if binary is None:
        return "not installed"
    done = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30, check=False)
    return done.stdout.strip()


@dataclass
class PageRun:
    """What a headless run produced."""

    dom: str
    stderr: str
    screenshot: Path | None


def render(
    url: str,
    *,
    screenshot: Path | None = None,
    window: tuple[int, int] = (1280, 1000),
    budget_ms: int = 3000,
    timeout_s: float = 60.0,
) -> PageRun:
    """Load ``url`` in headless Chromium; once the page is idle for ``budget_ms`` of virtual time, dump its DOM."""
    binary = chromium_binary()
    if binary is None:
        raise RuntimeError("Chromium not installed")
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        argv = [
            binary,
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={window[0]},{window[1]}",
            f"--virtual-time-budget={budget_ms}",
            "--dump-dom",
        ]
        if screenshot is not None:
            screenshot = screenshot.resolve()  # Chromium runs in the profile directory
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            argv.append(f"--screenshot={screenshot}")
        argv.append(url)
        popen = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            cwd=profile,
            start_new_session=True,  # its own process group: a timeout kills the renderer and GPU processes too
        )
        try:
            out, err = popen.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(popen.pid, signal.SIGKILL)
            out, err = popen.communicate(timeout=10)
            raise TimeoutError(
                f"Chromium did not finish {url} within {timeout_s} s (a stream never closed?);"
                f" stderr:\n{_tail(err)}\nDOM so far:\n{out.decode(errors='replace')[-3000:]}"
            ) from None
    if popen.returncode != 0:
        raise RuntimeError(f"Chromium exited with {popen.returncode} on {url}; stderr:\n{_tail(err)}")
    if screenshot is not None and not screenshot.is_file():
        raise RuntimeError(f"Chromium wrote no screenshot to {screenshot}; stderr:\n{_tail(err)}")
    return PageRun(out.decode("utf-8", errors="replace"), err.decode("utf-8", errors="replace"), screenshot)


def console_messages(stderr: str) -> list[str]:
    """What the page wrote to its console (errors included), from a run's stderr."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def _tail(data: bytes, limit: int = 4000) -> str:
    lines = [line for line in data.decode(errors="replace").splitlines() if "dbus" not in line.lower()]
    return "\n".join(lines)[-limit:]


@dataclass
class Element:
    """An element of a parsed DOM: tag, attributes, all text inside it, and its children."""

    tag: str
    attrs: dict[str, str]
    text: str = ""
    children: list[Element] = field(default_factory=list)

    def find_all(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> list[Element]:
        """Descendants matching ``tag``, a class and exact attribute values (``data_level`` means ``data-level``)."""
        wanted = {name.replace("_", "-"): value for name, value in attrs.items()}
        found = []
        for child in self.children:
            classes = child.attrs.get("class", "").split()
            if (
                (tag is None or child.tag == tag)
                and (cls is None or cls in classes)
                and all(child.attrs.get(k) == v for k, v in wanted.items())
            ):
                found.append(child)
            found.extend(child.find_all(tag, cls, **attrs))
        return found

    def find(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> Element:
        """The first descendant that matches; AssertionError if none."""
        found = self.find_all(tag, cls, **attrs)
        assert found, f"no <{tag or '*'} class={cls!r} {attrs}> in <{self.tag} {self.attrs}>"
        return found[0]


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {name: value or "" for name, value in attrs})
        self.stack[-1].children.append(element)
        if tag not in VOID:
            self.stack.append(element)

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        for element in self.stack:
            element.text += data


def parse_dom(html: str) -> Element:
    """A serialised DOM (``--dump-dom``) as a tree of ``Element``."""
    builder = _TreeBuilder()
    builder.feed(html)
    builder.close()
    return builder.root
