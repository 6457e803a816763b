"""One meter's login cannot hurt the fleet (issue 11), on both brokers, against the real bridge (gunicorn + gevent).

Meters A, B and C run at 10x; then A stops (cleanly), and a client with A's login publishes on A's topics what the
meter never would: a seq 10**9 and 2**62 ahead, a ts a year ahead, the current seq again and one 500 back for newer
seconds (other values), and a retained ``hacked`` status. Meter A then starts again on its outbox.

What must hold: B and C are ingested all along (never a pause of more than a few seconds); the forged readings are
rejected and counted by reason; no gap opens and the bridge asks A for next to no replays; A's real readings after the
attack are all stored (none too old), with no restart and no open gap; none of A's rows on disk is deleted; A's status
is ``unknown`` while the junk is retained and ``online`` again when A is back. The figures are printed and appended
to ``$FAULT_REPORT`` when set (docs/reliability.md).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import urllib.request
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from config.topics import reading_topic, status_topic
from config.wire import Reading, encode_reading, parse_ts
from tests.support.procs import LOOPBACK, Proc, children, login, running, start_bridge, start_meters, wait_until

pytestmark = pytest.mark.integration

SPEED = 10
YEAR = 365 * 86_400


def _meters(port: int) -> dict[str, dict[str, object]]:
    with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/api/meters", timeout=5) as response:
        found = json.loads(response.read())["meters"]
    assert isinstance(found, dict)
    return found


def _received(port: int, meter: str) -> int:
    return int(_meters(port)[meter]["received"])  # type: ignore[call-overload]


def _rows(db: Path, meter: str) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM readings WHERE meter = ?", (meter,)).fetchone()[0])


def _rss_kb(bridge: Proc) -> int:
    """Resident memory of the bridge's gunicorn worker (kB)."""
    worker = children(bridge.popen.pid)[0]
    for line in Path(f"/proc/{worker}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


class Watch:
    """Samples B's and C's received counts every 0.25 s in a thread: the longest time either stood still."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.longest_pause_s = 0.0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        last: dict[str, tuple[int, float]] = {}
        for _ in range(2400):  # bounded: 10 minutes at most
            if self._stop.wait(0.25):
                return
            try:
                meters, now = _meters(self.port), time.monotonic()
            except (OSError, ValueError):  # the bridge did not answer (a hung worker): the counts stand still
                continue
            self.samples += 1
            for meter in ("B", "C"):
                count = int(meters[meter]["received"])  # type: ignore[call-overload]
                seen, since = last.get(meter, (count, now))
                if count != seen or meter not in last:
                    last[meter] = (count, now)
                else:
                    self.longest_pause_s = max(self.longest_pause_s, now - since)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _attacker(port: int) -> mqtt.Client:
    """A client with meter A's login (and the only client id A's login may use)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="meter-A", protocol=mqtt.MQTTv311)
    client.username_pw_set(**login("A"))
    connected = threading.Event()
    client.on_connect = lambda c, u, f, rc, p: connected.set() if not rc.is_failure else None
    client.connect(LOOPBACK, port, 30)
    client.loop_start()
    assert connected.wait(10), "the attacker (A's login) could not connect"
    return client


def _publish(client: mqtt.Client, topic: str, payload: bytes, retain: bool = False) -> None:
    info = client.publish(topic, payload, qos=1, retain=retain)
    info.wait_for_publish(timeout=10)
    assert info.is_published()


def test_one_meter_login_cannot_hurt_the_fleet(broker: Proc, broker_kind: str, tmp_path: Path) -> None:
    port = broker.port or 0
    bridge = start_bridge(port, tmp_path / "bridge", env={"FLEET_SPEED": str(SPEED)})
    db = tmp_path / "bridge" / "data" / "bridge.sqlite3"
    meters_bc = start_meters(port, ["B", "C"], tmp_path / "bc", speed=SPEED, start_at="07:00:00")
    meter_a = start_meters(port, ["A"], tmp_path / "a", speed=SPEED, start_at="07:00:00", name="meter-a")
    http = bridge.port or 0
    with running(bridge, meters_bc, meter_a):
        wait_until(lambda: all(_received(http, m) >= 60 for m in "ABC"), 40, "A, B and C heard")
        assert meter_a.stop() == 0  # A goes quiet; its login is now someone else's
        wait_until(lambda: _meters(http)["A"]["status"] == "offline", 15, "A offline")
        a = _meters(http)["A"]
        last_seq, last_ts = int(a["last_seq"]), parse_ts(str(a["last_reading"]))  # type: ignore[call-overload]
        wait_until(lambda: db.exists() and _rows(db, "A") >= int(a["received"]), 15, "A's rows on disk")  # type: ignore[call-overload]
        rows_before, rss_before = _rows(db, "A"), _rss_kb(bridge)

        def forged(seq: int, ts: int) -> bytes:
            return encode_reading(Reading("A", seq, ts, 999_999.0, 999_999.0, 999_999.0, 9.0, 9.0, 9.0))

        attack = [
            forged(last_seq + 10**9, last_ts + 1),  # seq jump: gaps_open went to 1,000,000,184, 91,845 replays
            forged(last_seq + 2**62, last_ts + 2),  # the repair pass never ended; the worker died
            forged(last_seq + 1, last_ts + YEAR),  # a year ahead: A's later readings too old, its rows pruned
            forged(last_seq, last_ts + 3),  # the current seq again, for a newer second: a "restart"
            forged(max(0, last_seq - 500), last_ts + 4),  # 500 back: a gap that never closed, 2,534 seqs asked for
        ]
        with Watch(http) as watch:
            client = _attacker(port)
            try:
                for payload in attack:
                    _publish(client, reading_topic("A"), payload)
                _publish(client, status_topic("A"), b"hacked", retain=True)
                wait_until(lambda: sum(_meters(http)["A"]["rejected"].values()) >= 5, 15, "attack counted")  # type: ignore[attr-defined]
                wait_until(lambda: _meters(http)["A"]["status"] == "unknown", 15, "junk status seen")
            finally:
                client.disconnect()
                client.loop_stop()
            attacked = _meters(http)["A"]
            # The meter comes back on its outbox: seq and registers go on where it stopped.
            again = start_meters(port, ["A"], tmp_path / "a", speed=SPEED, start_at="07:00:00", name="meter-a2")
            with running(again):
                received = int(attacked["received"])  # type: ignore[call-overload]
                wait_until(lambda: _received(http, "A") >= received + 100, 40, "A's real readings after the attack")
                wait_until(lambda: _meters(http)["A"]["status"] == "online", 15, "A online again")
                wait_until(lambda: _meters(http)["A"]["gaps_open"] == 0, 20, "no gap left open")
                after = _meters(http)["A"]
        rows_after, rss_after = _rows(db, "A"), _rss_kb(bridge)
    assert attacked["rejected"] == {"seq_jump": 2, "future": 1, "seq_reused": 2, "bad_status": 1}, attacked
    assert attacked["gaps_open"] == 0, attacked
    assert int(attacked["last_seq"]) == last_seq, attacked  # type: ignore[call-overload]
    assert after["seq_restarts"] == 0, after
    assert after["rejected"] == attacked["rejected"], after  # none of A's real readings refused (none too old)
    assert int(after["replay_requested"]) <= 1000, after  # type: ignore[call-overload]
    assert rows_after >= rows_before, (rows_before, rows_after)
    assert watch.samples >= 8, watch.samples  # B and C were watched all through the attack and A's return
    assert watch.longest_pause_s <= 5.0, watch.longest_pause_s
    figures = {
        "scenario": "one meter's login",
        "broker": broker_kind,
        "rejected": attacked["rejected"],
        "gaps_open_after_attack": attacked["gaps_open"],
        "replays_requested_seqs": after["replay_requested"],
        "longest_ingest_pause_s_b_c": round(watch.longest_pause_s, 2),
        "rows_of_a_before": rows_before,
        "rows_of_a_after": rows_after,
        "bridge_rss_kb_before": rss_before,
        "bridge_rss_kb_after": rss_after,
        "real_readings_after": int(after["received"]) - received,  # type: ignore[call-overload]
    }
    print(f"\nATTACK FIGURES {json.dumps(figures)}")
    report = os.environ.get("FAULT_REPORT")
    if report:
        with open(report, "a", encoding="utf-8") as out:
            out.write(json.dumps(figures) + "\n")
