"""Under gunicorn's gevent worker, the bridge's ingest path must not wait behind the SSE greenlets queued to run.

Each case runs a script in a fresh process with gevent's monkey patching (as the worker does; patching this test
process would change every other test), with real sockets and a real store, and prints what it counted: greenlet
switches or turns of the other greenlets, never times.

- ``ReadingStore.put``, and the subscriber's handling of a PUBACK, must not switch greenlets. ``put`` did on every
  first reading after the writer had taken the buffer (``Condition.notify`` over a plain ``Lock`` checks ownership
  with a failing non-blocking acquire, and gevent's lock yields then), which put the MQTT thread behind every stream
  a window had just woken, and behind a storm of connects for seconds.
- A message that reaches the subscriber's socket is handled within a fraction of a pass over the greenlets queued to
  run (a greenlet waiting on its socket is switched to at the loop's next I/O poll), not after all of them (a wake-up
  through the selector's event waited at the end of the queue).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.paths import ROOT

# What both switch-counting scripts begin with: gevent's patching (before anything else is imported), and a count of
# greenlet switches, which ``switches_in(call)`` takes around one call.
SWITCHES = r"""
from gevent import monkey

monkey.patch_all()

import json
import sys
from pathlib import Path

import greenlet

switches = 0


def trace(event, args):
    global switches
    if event in ("switch", "throw"):
        switches += 1


def switches_in(call):
    before = switches
    greenlet.settrace(trace)
    try:
        call()
    finally:
        greenlet.settrace(None)
    return switches - before
"""

STORE_SCRIPT = (
    SWITCHES
    + r"""
from bridge.ingest.history import History
from bridge.ingest.store import ReadingStore
from config.wire import Reading

store = ReadingStore(Path(sys.argv[1]), retention_s=86_400)
history = History(3600, store)
t0 = 1_704_067_200
counts = []
for i in range(20):
    reading = Reading("A", i, t0 + i, 0.0, 0.0, 1.0, 0.0, 0.0, i / 3600)
    counts.append(switches_in(lambda: history.put(reading)))
    if i % 5 == 4:
        assert store.flush()  # the writer takes what is queued: the next reading notifies it again
store.close()
print(json.dumps({"switches_per_put": counts, "written": store.written}))
"""
)

PUBACK_SCRIPT = (
    SWITCHES
    + r"""
from bridge.ingest.subscriber import Subscriber
from config.mqtt.packet import puback_packet, split_packets
from config.settings import parse_broker_url

subscriber = Subscriber(parse_broker_url("mqtt://127.0.0.1:1"), None)
counts = [
    switches_in(lambda: subscriber._handle(split_packets(bytearray(puback_packet(mid))))) for mid in range(1, 6)
]
print(json.dumps({"switches_per_puback": counts}))
"""
)

READ_SCRIPT = r"""
from gevent import monkey

monkey.patch_all()

import json
import socket
import time

import gevent

from bridge.ingest.subscriber import Subscriber
from config.mqtt.packet import publish_packet, string
from config.settings import parse_broker_url

BUSY = 200  # greenlets always ready to run, each turn 0.2 ms of CPU: a pass over them is 40 ms, 8 switch intervals
TURN_S = 0.0002
MESSAGES = 5

turns = 0
sent_at = []
handled_at = []
stop = False
bridge_end, broker_end = socket.socketpair()


def busy(index):
    global turns
    while not stop and turns < 200_000:
        until = time.perf_counter() + TURN_S
        while time.perf_counter() < until:
            pass
        turns += 1
        # one greenlet sends the next message once the last one was handled, a pass later
        if index == 0 and len(sent_at) == len(handled_at) < MESSAGES:
            sent_at.append(turns)
            broker_end.sendall(publish_packet(string("bench/probe"), b"x", 0))
        gevent.sleep(0)


subscriber = Subscriber(parse_broker_url("mqtt://127.0.0.1:1"), None)
subscriber.add_route("bench/probe", lambda payload: handled_at.append(turns), qos=0)
reader = gevent.spawn(subscriber._read_loop, bridge_end)
workers = [gevent.spawn(busy, i) for i in range(BUSY)]
deadline = time.monotonic() + 60
while len(handled_at) < MESSAGES and time.monotonic() < deadline:
    gevent.sleep(0.05)
stop = True
subscriber._stop.set()
bridge_end.shutdown(socket.SHUT_RDWR)
gevent.joinall([reader, *workers], timeout=10)
print(json.dumps({"busy": BUSY, "sent_at": sent_at, "handled_at": handled_at}))
"""


def _run(script: str, *args: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=120, cwd=ROOT, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_a_reading_queued_for_the_disk_never_switches_greenlets(tmp_path: Path) -> None:
    result = _run(STORE_SCRIPT, str(tmp_path))
    assert result["written"] == 20
    assert result["switches_per_put"] == [0] * 20


def test_a_puback_never_switches_greenlets() -> None:
    assert _run(PUBACK_SCRIPT)["switches_per_puback"] == [0] * 5


def test_the_mqtt_thread_handles_a_message_before_the_queued_greenlets_have_all_run() -> None:
    result = _run(READ_SCRIPT)
    sent: list[int] = result["sent_at"]
    handled: list[int] = result["handled_at"]
    busy: int = result["busy"]
    assert len(handled) == len(sent) == 5, result
    waits = [h - s for s, h in zip(sent, handled, strict=True)]
    # gevent's loop looks at its clock every 50 callbacks and polls I/O once a switch interval (5 ms) has passed:
    # about 50 turns here (the old wake-up through the selector took 250-440), never a pass over all of them
    assert max(waits) < busy // 2, waits
