"""bridge.runtime: parts start in order and stop in reverse, once; a failed start leaves nothing running; the two
runtimes the bridge builds (in memory; with store, MQTT, republishing and repair) hold the parts they should."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from bridge.runtime import BridgeRuntime, Part
from bridge.services.state import BridgeState
from config.settings import load_settings


class Calls:
    """Records each part's start and stop, in the order they happen; ``fail`` names calls that raise."""

    def __init__(self, fail: tuple[str, ...] = ()) -> None:
        self.log: list[str] = []
        self.fail = fail

    def part(self, name: str, held: bool = False) -> Part:
        return Part(name, lambda: self._call(f"start {name}"), lambda: self._call(f"stop {name}"), held=held)

    def _call(self, what: str) -> None:
        self.log.append(what)
        if what in self.fail:
            raise OSError(f"{what} failed")


def _state() -> BridgeState:
    return BridgeRuntime.in_memory(load_settings({})).state


def _runtime(calls: Calls, *names: str, held: tuple[str, ...] = ()) -> BridgeRuntime:
    return BridgeRuntime(_state(), [calls.part(name, held=name in held) for name in names])


def test_starts_in_order_and_stops_in_reverse() -> None:
    calls = Calls()
    runtime = _runtime(calls, "store", "baselines", "subscriber", "republisher", "repairer")
    runtime.start()
    assert calls.log == ["start store", "start baselines", "start subscriber", "start republisher", "start repairer"]
    assert runtime.running() == ["store", "baselines", "subscriber", "republisher", "repairer"]
    calls.log.clear()
    runtime.stop()
    assert calls.log == ["stop repairer", "stop republisher", "stop subscriber", "stop baselines", "stop store"]
    assert runtime.running() == []


def test_stop_twice_stops_once() -> None:
    calls = Calls()
    runtime = _runtime(calls, "a", "b")
    runtime.start()
    runtime.stop()
    runtime.stop()
    assert calls.log == ["start a", "start b", "stop b", "stop a"]


def test_a_part_that_fails_to_start_stops_those_before_it_and_raises() -> None:
    calls = Calls(fail=("start c",))
    runtime = _runtime(calls, "a", "b", "c", "d")
    with pytest.raises(OSError, match="start c failed"):
        runtime.start()
    assert calls.log == ["start a", "start b", "start c", "stop b", "stop a"]  # d never started, c never ran
    assert runtime.running() == []
    runtime.stop()  # the owner's stop after a failed start (gunicorn's worker_exit) has nothing left to do
    assert calls.log[-1] == "stop a"


def test_a_held_part_is_stopped_without_a_start() -> None:
    """An open store holds a thread and files from its build: stop closes it even if start never ran."""
    calls = Calls()
    runtime = _runtime(calls, "store", "subscriber", held=("store",))
    assert runtime.running() == ["store"]
    runtime.stop()
    assert calls.log == ["stop store"]


def test_a_held_part_is_stopped_when_its_own_start_fails() -> None:
    calls = Calls(fail=("start store",))
    runtime = _runtime(calls, "store", "subscriber", held=("store",))
    with pytest.raises(OSError, match="start store failed"):
        runtime.start()
    assert calls.log == ["start store", "stop store"]


def test_a_part_that_fails_to_stop_is_logged_and_the_rest_still_stop(caplog: pytest.LogCaptureFixture) -> None:
    calls = Calls(fail=("stop b",))
    runtime = _runtime(calls, "a", "b", "c")
    runtime.start()
    with caplog.at_level(logging.ERROR, logger="bridge.runtime"):
        runtime.stop()
    assert calls.log[3:] == ["stop c", "stop b", "stop a"]
    assert "b failed to stop" in caplog.text


def test_starts_once_and_never_after_a_stop() -> None:
    calls = Calls()
    started = _runtime(calls, "a")
    started.start()
    with pytest.raises(RuntimeError):
        started.start()
    stopped = _runtime(calls, "a")
    stopped.stop()
    with pytest.raises(RuntimeError):
        stopped.start()
    assert calls.log == ["start a"]


def test_part_names_differ() -> None:
    with pytest.raises(ValueError, match="names must differ"):
        _runtime(Calls(), "a", "a")


def _threads() -> set[threading.Thread]:
    return {thread for thread in threading.enumerate() if thread.is_alive()}


def test_in_memory_has_no_broker_no_disk_and_runs_its_baselines() -> None:
    runtime = BridgeRuntime.in_memory(load_settings({}))
    state = runtime.state
    assert state.subscriber is None
    assert state.history.store is None
    assert [part.name for part in runtime.parts] == ["baselines"]
    assert runtime.running() == []
    before = _threads()
    runtime.start()
    try:
        assert [thread.name for thread in _threads() - before] == ["baselines"]
    finally:
        runtime.stop()
    assert _threads() - before == set()


def test_for_settings_builds_every_part_in_order_and_holds_the_store(tmp_path: Path) -> None:
    """Built, not started: nothing connects; only the store (open from its build) is live, and stop closes it."""
    before = _threads()
    runtime = BridgeRuntime.for_settings(load_settings({"FLEET_DATA_DIR": str(tmp_path)}))
    state = runtime.state
    assert [part.name for part in runtime.parts] == ["store", "baselines", "subscriber", "republisher", "repairer"]
    assert state.subscriber is not None
    assert state.subscriber.ingest is state.ingest
    assert state.history.store is not None
    assert state.history.store.path.parent == tmp_path
    assert runtime.running() == ["store"]
    assert [thread.name for thread in _threads() - before] == ["store-writer"]
    runtime.stop()
    assert runtime.running() == []
    assert _threads() - before == set()
