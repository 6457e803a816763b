"""Many Server-Sent Events clients at once, for soak tests and benchmarks: asyncio sockets in one background thread.

Each client sends ``GET path`` and records the ``id:`` of every event it receives (window ends, epoch seconds) and its
arrival wall time. The caller's thread waits on a condition (``ClientLoad.wait``), notified at most every ``NOTIFY_S``
while events arrive, and reads the clients after ``stop()``, or before that under the lock (``wait``, ``snapshot``).
Every read has a timeout: a stream silent for ``read_timeout_s`` (heartbeats included) is an error.

Used by ``tests/integration/test_soak.py`` and ``bench/sse_clients.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, TypeVar

LOOPBACK: Final = "127.0.0.1"
NOTIFY_S: Final = 0.1
_T = TypeVar("_T")


@dataclass
class Client:
    """What one client saw: the HTTP status (and when its line came), window end ids and their arrival times, and the
    first error."""

    path: str
    status: int | None = None
    answered: float | None = None  # wall time the status line arrived
    ids: list[int] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    error: str | None = None


class ClientLoad:
    """One client per path against ``port``, connected ``batch`` at a time ``ramp_s`` apart, until ``stop()``."""

    def __init__(
        self,
        port: int,
        paths: Sequence[str],
        *,
        batch: int = 100,
        ramp_s: float = 0.05,
        read_timeout_s: float = 30.0,
    ) -> None:
        self.port = port
        self.clients = [Client(path) for path in paths]
        self.batch = batch
        self.ramp_s = ramp_s
        self.read_timeout_s = read_timeout_s
        self.loop_lags: list[tuple[float, float]] = []  # (wall time, seconds the client loop was late then)
        self._progress = threading.Condition()
        self._changed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sse-load", daemon=True)

    def start(self, timeout: float = 10.0) -> None:
        """Start connecting the clients (in the background); returns once the event loop runs."""
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the client thread did not start")

    def wait(self, predicate: Callable[[list[Client]], bool], timeout: float) -> bool:
        """Wait until ``predicate(clients)`` holds (checked as events arrive), at most ``timeout`` s."""
        with self._progress:
            return self._progress.wait_for(lambda: predicate(self.clients), timeout)

    def snapshot(self, read: Callable[[list[Client]], _T]) -> _T:
        """``read(clients)`` while no client records an event."""
        with self._progress:
            return read(self.clients)

    def stop(self, timeout: float = 30.0) -> None:
        """Close every connection and wait for the thread to end."""
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"the client thread did not end within {timeout} s")

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._ready.set()
        notifier = asyncio.create_task(self._notify_while_running())
        tasks: list[asyncio.Task[None]] = []
        for start in range(0, len(self.clients), self.batch):
            tasks += [asyncio.create_task(self._stream(c)) for c in self.clients[start : start + self.batch]]
            # pacing the connects (a load's own ramp, not a wait for a result); ends early on stop()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.ramp_s):
                    await self._stop.wait()
        await self._stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        notifier.cancel()
        await asyncio.gather(notifier, return_exceptions=True)
        self._notify()

    async def _notify_while_running(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            asleep = loop.time()
            await asyncio.sleep(NOTIFY_S)  # batches the notifications: a reader checks its predicate <= 10x/s
            # How much later than asked this loop got back to it: the clients' own delay, in every arrival time.
            self.loop_lags.append((time.time(), loop.time() - asleep - NOTIFY_S))
            if self._changed:
                self._notify()

    def _notify(self) -> None:
        with self._progress:
            self._changed = False
            self._progress.notify_all()

    async def _stream(self, client: Client) -> None:
        writer = None
        try:
            reader, writer = await asyncio.open_connection(LOOPBACK, self.port)
            request = f"GET {client.path} HTTP/1.1\r\nHost: {LOOPBACK}\r\nAccept: text/event-stream\r\n\r\n"
            writer.write(request.encode())
            await writer.drain()
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel that races a completed read
            async with asyncio.timeout(self.read_timeout_s):
                status = await reader.readline()
            client.status = int(status.split()[1])
            client.answered = time.time()
            self._changed = True
            while self._stop is not None and not self._stop.is_set():
                # One read per event (an event ends with a blank line; the headers end with CRLF CRLF and come with
                # the first one), not one per line: 10,000 clients read 10,000 events a window in this one thread.
                async with asyncio.timeout(self.read_timeout_s):
                    try:
                        block = await reader.readuntil(b"\n\n")
                    except asyncio.IncompleteReadError:
                        client.error = "closed by the server"
                        break
                ids = [int(line[4:].strip()) for line in block.split(b"\n") if line.startswith(b"id: ")]
                if ids:
                    arrived = time.time()
                    with self._progress:
                        client.ids += ids
                        client.arrivals += [arrived] * len(ids)
                    self._changed = True
        except TimeoutError:
            client.error = f"nothing read for {self.read_timeout_s} s"
        except (OSError, ValueError, IndexError, asyncio.LimitOverrunError) as exc:
            client.error = repr(exc)
        finally:
            if client.error is not None:
                self._changed = True
            if writer is not None:
                writer.close()


def out_of_step(client: Client, interval_s: int, span: range) -> str | None:
    """Why ``client`` did not get every window of ``span`` (window ends) exactly once and in order, or None.

    Stricter than the span: from its first event to its last, each window end is the previous one plus ``interval_s``.
    """
    if client.error is not None:
        return client.error
    steps = {later - earlier for earlier, later in zip(client.ids, client.ids[1:], strict=False)}
    if steps - {interval_s}:
        return f"window ends not consecutive: steps {sorted(steps)} (ids {client.ids[:3]}..{client.ids[-3:]})"
    if not client.ids or client.ids[0] > span.start or client.ids[-1] < span[-1]:
        return f"ids {client.ids[:1]}..{client.ids[-1:]} do not cover {span.start}..{span[-1]}"
    return None


def common_span(clients: Sequence[Client], interval_s: int) -> range:
    """Window ends every client received live: after the last client's first event (the newest window already final
    when it connected, sent at once), up to the first client's last."""
    firsts = [c.ids[0] for c in clients if c.ids]
    lasts = [c.ids[-1] for c in clients if c.ids]
    if not firsts:
        return range(0)
    return range(max(firsts) + interval_s, min(lasts) + 1, interval_s)
