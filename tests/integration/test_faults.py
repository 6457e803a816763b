"""Faults, end to end, on both brokers: whatever breaks, every reading ends up in the bridge's history exactly once.

Each scenario runs a broker, one simulator process with meters A and B at ``SPEED`` x (minutes of meter time in
seconds of wall time) and the bridge; it breaks something mid-stream, lets the fleet recover, stops the meters
cleanly and then checks, per meter:

- every seq from 0 to the meter's last (read from its outbox) is in the bridge's history (its SQLite store) exactly
  once, and the bridge reports no open gap and no sequence restart;
- every second's values equal a fault-free run of the same seed (the meter rebuilt in this process), and so do the
  window aggregates the bridge serves (``/stream_data?pace=none``, 10 s windows).

Figures, per scenario and broker: readings lost, duplicate deliveries dropped, seqs that arrived after a gap was seen
(repaired: by a meter's backlog or a replay) and seqs the bridge asked the meters to replay. They are printed, and
appended as JSON lines to ``$FAULT_REPORT`` when that is set (docs/reliability.md).
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from bridge.windows.aggregate import make_window
from config.settings import DEFAULT_GRACE_S
from config.topics import status_topic
from config.wire import Reading, decode_reading, encode_reading, parse_ts
from simulator.meters.fleet import build_meters, fleet_specs
from tests.conftest import require_mosquitto
from tests.support.faults import Figures, store_rows
from tests.support.fleetmeters import outbox_bounds
from tests.support.mqtt import collecting
from tests.support.procs import Proc, signal_tree, start_bridge, start_broker, start_meters, wait_until
from tests.support.sse import SSEClient

pytestmark = pytest.mark.integration

SPEED = 40.0
METERS = ("A", "B")
SEED = 1
START_AT = "06:00:00"
INTERVAL_S = 10
GRACE_S = DEFAULT_GRACE_S  # the bridge's FLEET_GRACE_S: a window is final once the meter's stream is this past its end
DOWN_S = 10.0  # the outage: bridge down, broker frozen
KEEPALIVE_S = 2  # the meters' MQTT keepalive in these tests (the broker gives up after 1.5x)
# Mosquitto 2.0 (Debian's 2.0.11) checks keepalives only when more than 5 whole seconds passed since its last check
# (src/keepalive.c: `if(last_keepalive_check + 5 < db.now_s)`), in whole seconds, so it notices a silent client up to
# 7 s late; measured here: 6.7-8.8 s for a keepalive of 2 s (3.0 s when the check happened to fall right).
MOSQUITTO_CHECK_S = 7
OFFLINE_BOUND_S = 1.5 * KEEPALIVE_S + 1 + MOSQUITTO_CHECK_S


@dataclass
class Fleet:
    """The processes of one scenario, replaced as they are restarted."""

    kind: str
    root: Path
    broker: Proc
    bridge: Proc
    meters: Proc
    mosquitto_lines: tuple[str, ...] = ()
    restarts: int = 0
    extra: list[Proc] = field(default_factory=list)

    @property
    def port(self) -> int:
        """The broker's port (kept across broker restarts)."""
        assert self.broker.port is not None
        return self.broker.port

    def restart_broker(self) -> None:
        """Start the broker again on the same port and directory (Mosquitto finds its persistence file there)."""
        self.restarts += 1
        self.broker = start_broker(
            self.kind,
            self.root / "broker",
            port=self.port,
            meters=METERS,
            mosquitto_lines=self.mosquitto_lines,
        )

    def restart_bridge(self) -> None:
        """Start the bridge again on its data directory (same client id: its persistent session)."""
        self.bridge = start_bridge(self.port, self.root / "bridge", env=_bridge_env())

    def restart_meters(self) -> None:
        """Start the simulator again on its data directory (its outbox) with the same arguments."""
        self.meters = _start_meters(self.port, self.root / "meters", name=f"meters-again-{self.restarts}")


def _bridge_env() -> dict[str, str]:
    return {"FLEET_SPEED": str(SPEED), "FLEET_HOUSEHOLDS": ",".join(METERS), "FLEET_HA_DISCOVERY": "false"}


def _start_meters(port: int, log_dir: Path, name: str | None = None) -> Proc:
    return start_meters(
        port,
        METERS,
        log_dir,
        speed=SPEED,
        start_at=START_AT,
        seed=SEED,
        name=name,
        extra=["--keepalive", str(KEEPALIVE_S)],
    )


def _api_meters(fleet: Fleet) -> dict[str, dict[str, object]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{fleet.bridge.port}/api/meters", timeout=5) as response:
        found = json.loads(response.read())["meters"]
    assert isinstance(found, dict)
    return found


def _received_at_least(fleet: Fleet, count: int) -> Callable[[], bool]:
    def check() -> bool:
        meters = _api_meters(fleet)
        return all(int(meters.get(m, {}).get("received", 0)) >= count for m in METERS)  # type: ignore[call-overload]

    return check


def _reference(meter: str, first_ts: int, last_ts: int) -> list[Reading]:
    """The fault-free run: the same meter, seed and start, stepped in this process, as the wire carries it."""
    built = build_meters(fleet_specs([meter]), SEED, ZoneInfo("UTC"), first_ts, "classic")[0]
    readings = built.due(last_ts + 1, limit=last_ts - first_ts + 1)
    return [decode_reading(f"meters/{meter}/reading", encode_reading(r)) for r in readings]


def _windows(fleet: Fleet, meter: str, first_ts: int, last_ts: int) -> list[dict[str, object]]:
    """The bridge's 10 s windows of ``meter`` from the first whole one to the last whole one, over SSE."""
    start = -(-first_ts // INTERVAL_S) * INTERVAL_S
    midnight = first_ts - first_ts % 86_400
    end = (last_ts + 1 - GRACE_S) // INTERVAL_S * INTERVAL_S
    client = SSEClient(
        fleet.bridge.port or 0,
        f"/stream_data?household={meter}&interval={INTERVAL_S}&start_index={start - midnight}&pace=none",
    )
    docs: list[dict[str, object]] = []
    try:
        for _ in range((end - start) // INTERVAL_S + 50):  # bounded
            event = client.next_data_event()
            if event.event is not None:  # a reset or a revision: not a window in order
                continue
            doc = event.json()
            if parse_ts(str(doc["window_end"])) > end:
                break
            docs.append(doc)
            if parse_ts(str(doc["window_end"])) == end:
                break
    finally:
        client.close()
    return docs


def _check_and_report(fleet: Fleet, scenario: str) -> Figures:
    """Let the bridge repair its gaps (the meters answer replays while they run), stop the meters cleanly, wait for
    the bridge to hold everything, check it, and give the figures."""

    def repaired() -> bool:
        meters = _api_meters(fleet)
        return all(meters[m]["gaps_open"] == 0 for m in METERS)

    wait_until(repaired, 40, "no gap open while the meters run")
    assert fleet.meters.stop(signal.SIGTERM) == 0, fleet.meters.log()[-3000:]
    bounds = outbox_bounds(fleet.root / "meters")
    assert set(bounds) == set(METERS)
    last = {m: seq for m, (seq, _, _) in bounds.items()}

    def complete() -> bool:
        meters = _api_meters(fleet)
        return all(meters[m]["last_seq"] == last[m] and meters[m]["gaps_open"] == 0 for m in METERS)

    wait_until(complete, 30, f"every seq up to {last} held, no gap open")
    summary = _api_meters(fleet)
    windows = {m: _windows(fleet, m, bounds[m][1], bounds[m][2]) for m in METERS}
    assert fleet.bridge.stop(signal.SIGTERM) == 0  # flushes the store
    total = lost = 0
    for meter in METERS:
        rows = store_rows(fleet.root / "bridge", meter)
        seqs = [row[0] for row in rows]
        missing = sorted(set(range(last[meter] + 1)) - set(seqs))
        lost += len(missing)
        total += last[meter] + 1
        assert seqs == list(range(last[meter] + 1)), f"{meter}: missing {missing[:20]}, {len(seqs)} rows"
        assert summary[meter]["seq_restarts"] == 0, summary[meter]
        assert summary[meter]["received"] == last[meter] + 1, summary[meter]
        first_ts, last_ts = int(rows[0][1]), int(rows[-1][1])  # type: ignore[call-overload]
        assert last_ts - first_ts == last[meter], "one reading a second, none skipped"
        reference = _reference(meter, first_ts, last_ts)
        expected = [
            (r.seq, r.ts, r.ac_w, r.geyser_w, r.overall_w, r.ac_kwh, r.geyser_kwh, r.overall_kwh) for r in reference
        ]
        assert rows == expected, f"{meter}: the values or registers differ from a fault-free run"
        _check_windows(windows[meter], meter, first_ts, last_ts, reference)
    figures = Figures.of(scenario, fleet.kind, total, lost, {m: summary[m] for m in METERS})
    figures.report()
    return figures


def _check_windows(
    docs: list[dict[str, object]], meter: str, first_ts: int, last_ts: int, reference: list[Reading]
) -> None:
    by_ts = {r.ts: r for r in reference}
    assert docs, "no window served"
    expected_start = -(-first_ts // INTERVAL_S) * INTERVAL_S
    assert parse_ts(str(docs[0]["window_start"])) == expected_start
    assert len(docs) == ((last_ts + 1 - GRACE_S) // INTERVAL_S * INTERVAL_S - expected_start) // INTERVAL_S
    for doc in docs:
        start, end = parse_ts(str(doc["window_start"])), parse_ts(str(doc["window_end"]))
        samples = np.full((end - start, 3), np.nan)
        present = 0
        for i, ts in enumerate(range(start, end)):
            reading = by_ts.get(ts)
            if reading is not None:
                samples[i] = [np.nan if v is None else v for v in reading.powers_kw()]
                present += 1
        window = make_window(meter, INTERVAL_S, start, end, samples, present)
        got = {key: doc[key] for key in ("AC", "Geyser", "Overall", "samples")}
        assert got == {**window.values(), "samples": window.samples}, (meter, doc["window_start"])


@pytest.fixture(params=["amqtt", pytest.param("mosquitto", marks=pytest.mark.mosquitto)])
def kind(request: pytest.FixtureRequest) -> str:
    """Every scenario on both brokers."""
    if request.param == "mosquitto":
        require_mosquitto()
    return str(request.param)


@contextlib.contextmanager
def _fleet(kind: str, root: Path, mosquitto_lines: tuple[str, ...] = ()) -> Iterator[Fleet]:
    broker = start_broker(kind, root / "broker", meters=METERS, mosquitto_lines=mosquitto_lines)
    fleet = Fleet(kind, root, broker, broker, broker, mosquitto_lines)
    started: list[Proc] = [broker]
    try:
        fleet.bridge = start_bridge(fleet.port, root / "bridge", env=_bridge_env())
        fleet.meters = _start_meters(fleet.port, root / "meters")
        wait_until(_received_at_least(fleet, 60), 20, "the fleet running")
        yield fleet
    finally:
        for proc in {id(p): p for p in [fleet.meters, fleet.bridge, fleet.broker, *started, *fleet.extra]}.values():
            if proc.alive():
                proc.stop()


# Mosquitto keeps queued QoS 1 messages over a clean restart in its persistence file (as in production).
PERSISTENT = ("persistence true", "autosave_interval 1")


def test_broker_sigterm_and_restart(kind: str, tmp_path: Path) -> None:
    with _fleet(kind, tmp_path, PERSISTENT) as fleet:
        assert fleet.broker.stop(signal.SIGTERM) == 0
        fleet.restart_broker()
        wait_until(_received_at_least(fleet, 300), 40, "readings flowing again")
        _check_and_report(fleet, "1 broker SIGTERM + restart")


def test_broker_sigkill_and_restart(kind: str, tmp_path: Path) -> None:
    with _fleet(kind, tmp_path, PERSISTENT) as fleet:
        assert fleet.broker.stop(signal.SIGKILL) == -signal.SIGKILL
        fleet.restart_broker()
        wait_until(_received_at_least(fleet, 300), 40, "readings flowing again")
        _check_and_report(fleet, "2 broker SIGKILL + restart")


def test_bridge_sigkill_down_10_s_and_restart(kind: str, tmp_path: Path) -> None:
    with _fleet(kind, tmp_path) as fleet:
        signal_tree(fleet.bridge, signal.SIGKILL)
        fleet.bridge.stop(signal.SIGKILL)
        threading.Event().wait(DOWN_S)  # the outage itself (wall time), not a wait for a result
        fleet.restart_bridge()
        wait_until(_received_at_least(fleet, 300), 40, "the bridge catching up")
        _check_and_report(fleet, "3 bridge SIGKILL, 10 s down")


def test_meter_sigkill_and_restart(kind: str, tmp_path: Path) -> None:
    with _fleet(kind, tmp_path) as fleet:
        before = _api_meters(fleet)
        assert fleet.meters.stop(signal.SIGKILL) == -signal.SIGKILL
        fleet.restart_meters()
        wait_until(_received_at_least(fleet, int(before["A"]["received"]) + 150), 40, "the meters going on")  # type: ignore[call-overload]
        _check_and_report(fleet, "4 meter SIGKILL + restart")


def test_broker_frozen_10_s(kind: str, tmp_path: Path) -> None:
    with _fleet(kind, tmp_path) as fleet:
        signal_tree(fleet.broker, signal.SIGSTOP)
        try:
            threading.Event().wait(DOWN_S)  # the freeze itself
        finally:
            signal_tree(fleet.broker, signal.SIGCONT)
        wait_until(_received_at_least(fleet, 300), 40, "readings flowing again")
        _check_and_report(fleet, "5 broker frozen 10 s")


def test_slow_bridge_against_the_broker_queue_limit(kind: str, tmp_path: Path) -> None:
    # Mosquitto drops QoS 1 messages for this client once 50 are queued (production allows 100000).
    with _fleet(kind, tmp_path, ("max_queued_messages 50",)) as fleet:
        signal_tree(fleet.bridge, signal.SIGSTOP)  # a bridge that reads nothing: its queue on the broker fills
        try:
            threading.Event().wait(3.0)  # 240 readings at 40x for 2 meters: about 5x the queue
        finally:
            signal_tree(fleet.bridge, signal.SIGCONT)
        wait_until(_received_at_least(fleet, 300), 40, "the bridge catching up")
        figures = _check_and_report(fleet, "6 slow bridge vs queue limit")
        if kind == "mosquitto":
            assert figures.repaired > 0, "Mosquitto dropped nothing: the queue limit was not reached"


def test_a_killed_meter_shows_offline_within_one_and_a_half_keepalives(kind: str, tmp_path: Path) -> None:
    """A meter that dies without closing its connection (frozen: power or network gone) is declared offline by the
    broker (its Last Will) within 1.5 x keepalive + 1 s, plus Mosquitto 2.0's keepalive check period; when it comes
    back, nothing is lost. (A meter killed outright closes its socket: the broker sends its Will at once.)"""
    with _fleet(kind, tmp_path) as fleet:
        with collecting(fleet.port, [status_topic("A")]) as statuses:
            statuses.wait_for(lambda m: m.payload == b"online", 10)
            frozen_at = datetime.now(UTC).timestamp()
            signal_tree(fleet.meters, signal.SIGSTOP)
            try:
                statuses.wait_for(lambda m: m.payload == b"offline", OFFLINE_BOUND_S)
                took = datetime.now(UTC).timestamp() - frozen_at
            finally:
                signal_tree(fleet.meters, signal.SIGCONT)
            print(f"\noffline after {took:.2f} s (bound {OFFLINE_BOUND_S} s)")
            statuses.wait_for(lambda m: m.payload == b"online", 20)  # reconnected
        wait_until(_received_at_least(fleet, 300), 40, "readings flowing again")
        _check_and_report(fleet, "7 frozen meter offline, then back")
