"""Broker lists on real brokers: meters and bridge given two brokers fail over when one dies, and nothing is lost;
a broker that accepts TCP and never answers TLS does not stall the meters' one loop.

Failover: two independent brokers X and Y of one kind; the meters A-0001 and B-0001 (``--fleet 2``) are given
``X,Y`` (both start on Y: crc32 of their ids % 2 is 1), the bridge ``Y,X`` (it starts on the first: Y too). Y is
SIGKILLed; each meter notices at once (its socket closes) and tries its next node, X, after a random share of its
back-off (at most ``RECONNECT_MIN_S``, 0.5 s, after a connection that had been up) and the connect pacing (2 meters:
nothing); the bridge after paho's reconnect delay (1 s). The test allows ``RECOVER_S`` for it on a loaded machine,
and prints the figure measured. The brokers share no session or retained message: what Y took and never delivered,
and what X got before the bridge subscribed there, comes back by gap repair (replays from the meters' outboxes), so
in the end the bridge holds every seq of every meter exactly once.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import socket
import sqlite3
import ssl
import threading
import time
import urllib.request
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import config.mqtt.link
from config.secret import read_secret
from config.settings import parse_broker_urls
from config.shard import shard_of
from simulator.live.clock import SimClock
from simulator.live.publisher import FleetLoop
from simulator.meters.fleet import build_meters, fleet_specs
from tests.support.fleetmeters import HOUSEHOLDS, fleet_ids, outbox_bounds
from tests.support.mqtt import READING_TOPICS, collecting, readings_in
from tests.support.procs import (
    LOOPBACK,
    Proc,
    clean_env,
    fleet_secret,
    free_port,
    python_module,
    start,
    start_broker,
    start_meters,
    wait_until,
)
from tests.support.tls import make_ca, make_server_cert

pytestmark = pytest.mark.integration

METERS = tuple(fleet_ids(2))  # A-0001, B-0001: crc32(id) % 2 == 1, both start on the second broker of their list
SPEED = 10.0
RECOVER_S = 30.0  # every meter publishing through the survivor, and the bridge on it, within this (loaded machine)
WAIT_S = 40.0


def _start_bridge(urls: str, log_dir: Path) -> Proc:
    """The bridge (as tests.support.procs.start_bridge, with a broker list) on a free port, connected."""
    port = free_port()
    argv = python_module("bridge", "--broker", urls, "--host", LOOPBACK, "--port", str(port))
    env = {"FLEET_SPEED": str(SPEED), "FLEET_HOUSEHOLDS": ",".join(METERS), "FLEET_HA_DISCOVERY": "false"}
    proc = start("bridge", argv, log_dir, env=clean_env(env), port=port)
    proc.wait_port(port)
    proc.wait_mqtt(port)
    return proc


def _get(proc: Proc, path: str) -> dict[str, object]:
    with urllib.request.urlopen(f"http://{LOOPBACK}:{proc.port}{path}", timeout=5) as response:
        doc = json.loads(response.read())
    assert isinstance(doc, dict)
    return doc


def _meters(bridge: Proc) -> dict[str, dict[str, int]]:
    found = _get(bridge, "/api/meters")["meters"]
    assert isinstance(found, dict)
    return found


def _received(bridge: Proc, counts: dict[str, int]) -> bool:
    meters = _meters(bridge)
    return all(int(meters.get(m, {}).get("received", 0)) >= n for m, n in counts.items())


def test_meters_and_bridge_fail_over_to_the_surviving_broker(broker_kind: str, tmp_path: Path) -> None:
    assert all(shard_of(m, 2) == 1 for m in METERS)
    x = start_broker(broker_kind, tmp_path / "x", meters=METERS)
    y = start_broker(broker_kind, tmp_path / "y", meters=METERS)
    url_x, url_y = f"mqtt://{LOOPBACK}:{x.port}", f"mqtt://{LOOPBACK}:{y.port}"
    procs = [x, y]
    try:
        bridge = _start_bridge(f"{url_y},{url_x}", tmp_path / "bridge")
        procs.append(bridge)
        assert _get(bridge, "/healthz")["broker"] == url_y
        meters = start_meters(
            x.port or 0,
            HOUSEHOLDS,
            tmp_path / "meters",
            speed=SPEED,
            start_at="06:00:00",
            extra=["--fleet", str(len(METERS)), "--broker", f"{url_x},{url_y}"],
            env={"FLEET_LOG_LEVEL": "DEBUG"},  # each meter's "online at" line
        )
        procs.append(meters)
        wait_until(lambda: _received(bridge, dict.fromkeys(METERS, 20)), WAIT_S, "the fleet running on Y")
        for meter in METERS:
            assert f"meter {meter} online at {url_y}" in meters.log()

        with collecting(x.port or 0, READING_TOPICS) as observer:
            before = {m: int(c["received"]) for m, c in _meters(bridge).items()}
            killed = time.monotonic()
            assert y.stop(signal.SIGKILL) == -signal.SIGKILL
            back: dict[str, float] = {}
            while set(back) != set(METERS):  # bounded: wait_for raises after what is left of RECOVER_S
                left = RECOVER_S - (time.monotonic() - killed)
                message = observer.wait_for(lambda _: True, max(left, 0.01))
                for reading in readings_in(message):
                    back.setdefault(reading.meter, time.monotonic() - killed)
        wait_until(lambda: _get(bridge, "/healthz")["broker"] == url_x, RECOVER_S, "the bridge on X")
        bridge_back_s = time.monotonic() - killed
        wait_until(lambda: _received(bridge, {m: n + 20 for m, n in before.items()}), WAIT_S, "readings through X")
        for meter in METERS:
            assert f"meter {meter} online at {url_x}" in meters.log()
        print(
            f"\nFAILOVER FIGURES {broker_kind}: every meter publishing on X {max(back.values()):.2f} s after the"
            f" SIGKILL (first {min(back.values()):.2f} s); bridge on X within {bridge_back_s:.2f} s"
        )

        # Nothing lost: gaps repaired while the meters run, then everything up to each meter's last seq.
        wait_until(lambda: all(c["gaps_open"] == 0 for c in _meters(bridge).values()), WAIT_S, "gaps repaired")
        assert meters.stop(signal.SIGTERM) == 0, meters.log()[-3000:]
        last = {m: seq for m, (seq, _, _) in outbox_bounds(tmp_path / "meters").items()}
        assert set(last) == set(METERS)

        def complete() -> bool:
            found = _meters(bridge)
            return all(found[m]["last_seq"] == last[m] and found[m]["gaps_open"] == 0 for m in METERS)

        wait_until(complete, WAIT_S, f"every seq up to {last} at the bridge")
        assert bridge.stop(signal.SIGTERM) == 0
        with sqlite3.connect(tmp_path / "bridge" / "data" / "bridge.sqlite3") as conn:
            for meter in METERS:
                seqs = [
                    row[0] for row in conn.execute("SELECT seq FROM readings WHERE meter = ? ORDER BY seq", (meter,))
                ]
                assert seqs == list(range(last[meter] + 1)), f"{meter}: {len(seqs)} rows for {last[meter] + 1} seqs"
    finally:
        for proc in reversed(procs):
            proc.stop()


def test_a_broker_silent_in_tls_never_stalls_the_other_meters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One loop drives 4 meters over ``silent,good`` (TLS): C-0001 ("D" below) starts on ``silent``, a listener
    that completes TCP and never answers the TLS handshake; the 3 others on ``good``, a real TLS broker (amqtt).
    While D's handshake hangs, the others publish on. The connect deadline is raised to 60 s here so that "while D
    hangs" cannot end by itself: a blocking connect would hold the loop for all of it, and the others would publish
    nothing."""
    monkeypatch.setattr(config.mqtt.link, "CONNECT_TIMEOUT_S", 60.0)
    ca = make_ca(tmp_path / "pki", "fleet test CA")
    server = make_server_cert(tmp_path / "pki", ca, LOOPBACK)
    port = free_port()
    env = {
        "FLEET_HOUSEHOLDS": ",".join(fleet_ids(4)),
        "FLEET_MQTT_TLS_CERT": str(server.cert),
        "FLEET_MQTT_TLS_KEY": str(server.key),
    }
    good = start(
        "broker-amqtt-tls",
        python_module("broker", "--host", LOOPBACK, "--port", str(port)),
        tmp_path,
        env=clean_env(env),
        port=port,
    )
    try:
        good.wait_port(port)
        with socket.create_server((LOOPBACK, 0)) as silent:  # the kernel completes TCP; nobody ever answers
            ids = fleet_ids(4)  # A-0001, B-0001, C-0001, A-0002
            assert [shard_of(m, 2) for m in ids] == [1, 1, 0, 1]  # C-0001 on the first URL (silent), the rest on good
            secret = read_secret(fleet_secret())
            broker = parse_broker_urls(f"mqtts://{LOOPBACK}:{silent.getsockname()[1]},mqtts://{LOOPBACK}:{port}")
            broker = broker.each(lambda a: dataclasses.replace(a, tls_ca=str(ca.cert), secret=secret))
            t0 = time.time()
            meters = build_meters(fleet_specs(HOUSEHOLDS, len(ids)), 1, ZoneInfo("UTC"), t0)
            loop = FleetLoop(
                meters, broker, SimClock(wall_origin=time.monotonic(), sim_origin=t0, speed=SPEED), jitter=True
            )
            runner = threading.Thread(target=loop.run, name="fleet-loop")
            runner.start()
            try:
                d = loop.links["C-0001"]
                others = [loop.links[m] for m in ids if m != "C-0001"]

                def d_hangs() -> bool:
                    return d.client.connecting and isinstance(d.client.socket(), ssl.SSLSocket)

                wait_until(d_hangs, WAIT_S, "D in its TLS handshake with the silent node")
                wait_until(
                    lambda: all(link.connected for link in others), WAIT_S, "the others connected to the good node"
                )
                published = sum(link.published for link in others)
                wait_until(
                    lambda: sum(link.published for link in others) >= published + 30, WAIT_S, "the others publishing"
                )
                assert d_hangs()  # all of that while D's handshake still hangs
                assert not d.connected
            finally:
                loop.stop()
                runner.join(timeout=30)
            assert not runner.is_alive()
    finally:
        good.stop()
