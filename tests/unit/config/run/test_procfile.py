"""config.run.procfile: the Procfile's lines, and what the supervisor does when a process exits or a stop is asked."""

from __future__ import annotations

import pytest

from config.errors import ConfigError
from config.run.procfile import KILL_AFTER_S, ProcEntry, Supervision, parse_procfile
from tests.support.paths import ROOT


def test_parse_names_commands_comments_and_blank_lines() -> None:
    text = "# a comment\n\nbroker: exec python -m broker\n  meter-a:exec python -m simulator run --household A  \n"
    assert parse_procfile(text) == (
        ProcEntry("broker", "exec python -m broker"),
        ProcEntry("meter-a", "exec python -m simulator run --household A"),
    )


def test_the_project_procfiles_parse() -> None:
    names = [entry.name for entry in parse_procfile((ROOT / "Procfile").read_text())]
    assert names == ["broker", "meter-a", "meter-b", "meter-c", "bridge"]
    cluster = parse_procfile((ROOT / "Procfile.cluster").read_text())
    assert [entry.name for entry in cluster][:3] == ["nats-1", "nats-2", "nats-3"]
    bridge_0 = next(entry for entry in cluster if entry.name == "bridge-0")
    assert bridge_0.command.startswith('FLEET_SHARD=0/2 FLEET_BRIDGE_ID=bridge-0 FLEET_DATA_DIR="$CLUSTER_DIR/')


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("broker exec python -m broker\n", "Procfile:1: expected 'name: command'"),
        ("a: one\n# fine\nb c: two\n", "Procfile:3: expected 'name: command'"),
        ("a:\n", "Procfile:1: expected 'name: command'"),
        ("a: one\na: two\n", "Procfile:2: process 'a' is given twice"),
        ("# nothing\n\n", "Procfile: no process in it"),
    ],
)
def test_bad_procfiles_name_the_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_procfile(text)


def test_one_exit_leaves_the_others_running() -> None:
    sup = Supervision(["broker", "meter-a", "meter-b", "bridge"])
    assert sup.exited("meter-a", 0) == "meter-a exited (rc=0); broker, meter-b, bridge keep running"
    assert sup.running == ["broker", "meter-b", "bridge"]
    assert not sup.finished
    assert sup.overdue(1e9) == []  # no stop was asked: nothing is killed, however long
    assert sup.exited("meter-b", -9) == "meter-b exited (rc=-9); broker, bridge keep running"
    assert sup.exited("broker", 0) == "broker exited (rc=0); bridge keep running"
    assert sup.exited("bridge", 1) == "bridge exited (rc=1); no process left"
    assert sup.finished
    assert sup.exit_code() == 1


def test_a_stop_terminates_all_then_kills_the_rest_once() -> None:
    sup = Supervision(["broker", "meter-a", "bridge"])
    assert sup.stop(100.0) == ["broker", "meter-a", "bridge"]
    assert sup.exited("meter-a", 0) == "meter-a exited (rc=0)"
    assert sup.stop(101.0) == ["broker", "bridge"]  # a second stop: SIGTERM again to what is left
    assert sup.overdue(100.0 + KILL_AFTER_S - 0.1) == []
    assert sup.overdue(100.0 + KILL_AFTER_S) == ["broker", "bridge"]  # counted from the first stop
    assert sup.overdue(100.0 + KILL_AFTER_S + 5) == []  # once
    sup.exited("broker", -9)
    sup.exited("bridge", 0)
    assert sup.finished
    assert sup.exit_code() == 1  # one had to be killed


def test_a_clean_stop_is_exit_code_0_whatever_the_processes_said() -> None:
    sup = Supervision(["nats-1", "meters-1"])
    sup.stop(0.0)
    sup.exited("nats-1", 1)  # nats-server exits 1 after a clean SIGTERM shutdown
    sup.exited("meters-1", 0)
    assert sup.exit_code() == 0
    alone = Supervision(["a", "b"])
    alone.exited("a", 0)
    alone.exited("b", 0)
    assert alone.exit_code() == 0


def test_exits_must_be_of_running_processes_and_names_unique() -> None:
    sup = Supervision(["a"])
    sup.exited("a", 0)
    with pytest.raises(ValueError, match="not running"):
        sup.exited("a", 0)
    with pytest.raises(ValueError, match="unique"):
        Supervision(["a", "a"])
