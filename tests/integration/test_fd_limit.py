"""The open-file limit (``config.run.fdlimit``) in real processes whose limit the test lowers before they start.

- A fleet larger than the hard limit allows is refused before anything starts: exit code 2, one configuration error
  naming ``--fleet``, the limit, the descriptors needed and how to raise it; no connection reaches the broker's port
  and no outbox is created.
- A fleet of 1,100 meters (past the 1,021 that a soft limit of 1,024 holds) under soft 1,024 / hard 2,048 starts: the
  simulator raises its soft limit to the hard one, says so, and every meter comes online at a real Mosquitto.
- The bridge raises its limit in the gunicorn master before the fork: the worker that accepts the connections has it.
"""

from __future__ import annotations

import resource
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import require_mosquitto
from tests.support.procs import (
    LOOPBACK,
    Proc,
    children,
    clean_env,
    free_ports,
    python_module,
    running,
    start_broker,
    wait_until,
)

pytestmark = pytest.mark.integration

FITS = 1100  # past meter 1,021: what a soft limit of 1,024 (stdin, stdout, stderr and 1,021 sockets) holds


def _limit(soft: int, hard: int) -> Callable[[], None]:
    """A ``preexec_fn`` that sets the child's open-file limit before it runs Python."""

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    return apply


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A loopback port that records whether anything connected (non-blocking accept)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        sock.listen(64)
        sock.setblocking(False)
        yield sock


def _simulator(port: int, fleet: int) -> list[str]:
    return python_module(
        "simulator", "run", "--broker", f"mqtt://{LOOPBACK}:{port}", "--households", "A,B,C", "--fleet", str(fleet)
    )


def test_a_fleet_over_the_hard_limit_is_refused_before_any_meter_connects(
    listener: socket.socket, tmp_path: Path
) -> None:
    port = listener.getsockname()[1]
    done = subprocess.run(
        _simulator(port, 2000),
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=_limit(1024, 1024),
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith("simulator: configuration error: --fleet: needs 2064 open files"), error
    assert "only 1024" in error
    assert "ulimit -n" in error
    assert "LimitNOFILE" in error
    assert "ulimits" in error
    with pytest.raises(BlockingIOError):  # the process has exited: a connection it made would be waiting here
        listener.accept()
    assert not (tmp_path / "data").exists()  # no outbox either: nothing started


def test_the_simulator_raises_its_soft_limit_and_a_fleet_past_1021_meters_comes_online(tmp_path: Path) -> None:
    require_mosquitto()
    broker = start_broker("mosquitto", tmp_path / "broker", anonymous=True)
    meters = _spawn("meters", _simulator(broker.port or 0, FITS), tmp_path, _limit(1024, 2048))
    popen = meters.popen
    with running(broker, meters):
        online = f"all {FITS} meters connected after "
        wait_until(lambda: online in meters.log() or not meters.alive(), 120, "every meter online")
        assert meters.alive(), meters.log()
        assert "open-file limit (RLIMIT_NOFILE): soft 1024 -> 2048 (hard 2048)" in meters.log()
        assert _soft_limit(popen.pid) == 2048


def test_the_bridge_worker_runs_with_the_raised_limit(tmp_path: Path) -> None:
    port, broker_port = free_ports(2)
    argv = python_module(
        "bridge", "--broker", f"mqtt://{LOOPBACK}:{broker_port}", "--host", LOOPBACK, "--port", str(port)
    )
    bridge = _spawn("bridge", argv, tmp_path, _limit(1024, 4096), port)
    popen = bridge.popen
    with running(bridge):
        bridge.wait_port(port)  # the worker accepts: it has been forked
        workers = children(popen.pid)
        assert len(workers) == 1
        assert _soft_limit(workers[0]) == 4096
        assert "open-file limit (RLIMIT_NOFILE): soft 1024 -> 4096 (hard 4096)" in bridge.log()


def _spawn(name: str, argv: list[str], cwd: Path, preexec: Callable[[], None], port: int | None = None) -> Proc:
    """``argv`` started in ``cwd`` under the limit ``preexec`` sets, its output in ``<name>.log``."""
    log_path = cwd / f"{name}.log"
    with log_path.open("wb") as log_file:
        popen = subprocess.Popen(
            argv,
            cwd=cwd,
            env=clean_env(),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=preexec,
        )
    return Proc(name, popen, log_path, port)


def _soft_limit(pid: int) -> int:
    """A process's soft open-file limit, from /proc."""
    limits = Path(f"/proc/{pid}/limits").read_text()
    line = next(line for line in limits.splitlines() if line.startswith("Max open files"))
    return int(line.split()[3])
