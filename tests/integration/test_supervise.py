"""`make up`'s supervisor (python -m config.run.supervise Procfile) with the real Procfile: broker, meters A, B, C and
bridge on free ports. A SIGTERM to meter A's process stops meter A only: the bridge still answers and meters B and C
still publish (their received counts at the bridge grow), and A is shown offline. SIGINT to the supervisor then stops
every process, each in its turn, and nothing is left behind."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest

from tests.support.paths import ROOT
from tests.support.procs import clean_env, get_json, procfile_env, python_module, start, wait_until

pytestmark = pytest.mark.integration

NAMES = ("broker", "meter-a", "meter-b", "meter-c", "bridge")


def _meters(port: int) -> dict[str, dict[str, object]]:
    meters = get_json(port, "/api/meters")["meters"]
    assert isinstance(meters, dict)
    return meters


def _received(port: int, meter: str) -> int:
    return int(str(_meters(port).get(meter, {}).get("received", 0)))


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_one_stopped_meter_leaves_the_others_running_until_the_supervisor_stops(tmp_path: Path) -> None:
    _, http_port, env = procfile_env(tmp_path / "data")
    sup = start("supervise", python_module("config.run.supervise", str(ROOT / "Procfile")), tmp_path, env=env)
    pids: dict[str, int] = {}
    try:
        sup.wait_port(http_port, timeout=60)
        wait_until(lambda: all(_received(http_port, m) > 0 for m in "ABC"), 60, "readings of A, B and C")
        pids = {name: int(pid) for name, pid in re.findall(r"\| (\S+) started \(pid=(\d+)\)", sup.log())}
        assert sorted(pids) == sorted(NAMES), sup.log()

        os.kill(pids["meter-a"], signal.SIGTERM)
        kept = "meter-a exited (rc=0); broker, meter-b, meter-c, bridge keep running"
        wait_until(lambda: kept in sup.log(), 30, "meter A's exit, logged")
        before = {m: _received(http_port, m) for m in "BC"}
        wait_until(lambda: all(_received(http_port, m) >= before[m] + 20 for m in "BC"), 60, "B and C still publishing")
        assert sup.alive(), sup.log()
        health = get_json(http_port, "/healthz")
        assert health["mqtt"] == "connected", health
        wait_until(lambda: _meters(http_port)["A"]["status"] == "offline", 30, "meter A shown offline")
        for name in ("broker", "meter-b", "meter-c", "bridge"):
            assert _group_alive(pids[name]), name
        assert not _group_alive(pids["meter-a"])
    finally:
        code = sup.stop(signal.SIGINT, timeout=30)
    log = sup.log()
    assert code == 0, log
    assert "SIGINT: stopping broker, meter-b, meter-c, bridge" in log, log
    for name in ("meter-b", "meter-c", "bridge", "broker"):
        assert f"system  | {name} exited (rc=0)\n" in log, log
    assert "amqtt broker stopped" in log, log
    assert "sending SIGKILL" not in log, log
    assert "every process stopped (exit code 0)" in log, log
    assert [name for name, pgid in pids.items() if _group_alive(pgid)] == [], log  # gunicorn's worker too


PROCFILE = """\
# a process that writes no newline, one that ignores SIGTERM, one that fails at once
quiet: printf 'no newline'; exec sleep 60
stubborn: trap '' TERM; echo ready; while :; do sleep 0.1; done
fails: echo bye; exit 3
"""


def test_output_prefixed_a_failed_process_logged_and_one_ignoring_sigterm_killed(tmp_path: Path) -> None:
    procfile = tmp_path / "Procfile"
    procfile.write_text(PROCFILE)
    argv = python_module("config.run.supervise", "--kill-after", "1", str(procfile))
    sup = start("supervise", argv, tmp_path, env=clean_env())
    try:
        wait_until(lambda: "stubborn | ready\n" in sup.log(), 30, "the stubborn process's trap set")
        wait_until(lambda: "fails exited (rc=3); quiet, stubborn keep running" in sup.log(), 30, "the failure logged")
        assert sup.alive(), sup.log()
    finally:
        code = sup.stop(signal.SIGINT, timeout=30)
    log = sup.log()
    assert code == 1, log  # a process had to be killed
    assert "fails    | bye\n" in log, log
    assert "quiet    | no newline\n" in log, log  # the last line, printed when the process is gone
    assert "SIGINT: stopping quiet, stubborn (SIGTERM; SIGKILL to what is left after 1 s)" in log, log
    assert "quiet exited (rc=-15)" in log, log
    assert "sending SIGKILL to stubborn" in log, log
    assert "stubborn exited (rc=-9)" in log, log
    assert "every process stopped (exit code 1)" in log, log


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing-Procfile"], "supervise: cannot read missing-Procfile"),
        (["--kill-after", "soon", "Procfile"], "supervise: configuration error: --kill-after: not a number"),
        (["Procfile"], "supervise: configuration error: Procfile:1: expected 'name: command'"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_code_2(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "Procfile").write_text("not a procfile line\n")
    sup = start("supervise", python_module("config.run.supervise", *args), tmp_path, env=clean_env())
    assert sup.popen.wait(timeout=30) == 2
    assert sup.log().startswith(message), sup.log()
    assert sup.log().count("\n") == 1, sup.log()
