"""`make up` (python -m config.run.supervise running the Procfile): everything comes up, and SIGTERM to make stops every
process cleanly (tests/integration/test_supervise.py: one process that exits leaves the others running)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

from config.wire import decode_reading
from tests.support.mqtt import collecting
from tests.support.paths import ROOT
from tests.support.procs import procfile_env, start

pytestmark = pytest.mark.integration


def _children(pid: int) -> list[int]:
    """Every descendant pid of ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        kids = [child for child, parent in parents.items() if parent == current]
        found += kids
        frontier += kids
    return found


def _health(port: int) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            doc = json.loads(response.read())
            return doc if isinstance(doc, dict) else None
    except OSError:
        return None


def test_make_up_brings_up_the_embedded_default_and_stops_cleanly(tmp_path: Path) -> None:
    mqtt_port, http_port, env = procfile_env(tmp_path / "data")
    # The virtualenv running this test is the one `make up` uses (VENV=...): make finds it installed.
    venv = Path(sys.prefix)
    # As on a developer's machine: no FLEET_MQTT_SECRET, so the five processes, started together, race to make the
    # secret in the data directory, and must all end up with the same one.
    del env["FLEET_MQTT_SECRET"]
    secret = tmp_path / "data" / "mqtt-secret"
    makeup = start(
        "make-up", ["make", "-C", str(ROOT), "--no-print-directory", "up", f"VENV={venv}"], tmp_path, env=env
    )
    try:
        makeup.wait_port(http_port, timeout=30)
        assert secret.stat().st_mode & 0o777 == 0o600
        with collecting(mqtt_port, ["meters/+/reading"], secret=secret) as sub:
            meters = set()
            while meters != {"A", "B", "C"}:
                msg = sub.wait_for(lambda m: True, timeout=10)
                meters.add(decode_reading(msg.topic, msg.payload).meter)
        ready = threading.Event()
        doc = _health(http_port)
        for _ in range(100):  # bounded: the bridge hears all three meters within seconds
            doc = _health(http_port)
            if doc and doc["mqtt"] == "connected" and set(doc["meters"]) >= {"A", "B", "C"}:  # type: ignore[arg-type]
                break
            ready.wait(0.1)
        assert doc is not None
        assert doc["mqtt"] == "connected", doc
        assert set(doc["meters"]) >= {"A", "B", "C"}, doc  # type: ignore[arg-type]
        processes = _children(makeup.popen.pid)
        assert len(processes) >= 5
    finally:
        code = makeup.stop(signal.SIGTERM, timeout=20)
    log = makeup.log()
    assert code in (0, -signal.SIGTERM), log  # make re-raises the SIGTERM it passed on to the supervisor
    leftovers = [
        pid
        for pid in processes
        if Path(f"/proc/{pid}").exists()
        and "zombie"
        not in subprocess.run(
            ["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True, check=False
        ).stdout.lower()
    ]
    assert leftovers == [], log
    for name in ("broker", "meter-a", "meter-b", "meter-c", "bridge"):
        assert f"| {name} exited (rc=0)\n" in log, log
    assert "sending SIGKILL" not in log, log
    assert "amqtt broker stopped" in log
    assert "stopped; published" in log
