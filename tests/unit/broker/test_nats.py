"""The NATS cluster's configuration: topic filters as subjects, the users (bcrypt, rules), each node's config, and
``python -m broker nats-config`` in process. nats-server itself checks the files in ``test_nats_server_accepts``
(and the real cluster of tests/integration/test_nats_cluster.py logs every user in)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import bcrypt
import pytest

from broker.__main__ import main
from broker.nats import (
    MAX_SESSION_ACK_PENDING,
    SESSION_EXTRA_FILTERS,
    ClusterLayout,
    NodePorts,
    cluster_configs,
    layout_from_bases,
    max_ack_pending,
    node_config,
)
from config.credentials import NATS_MQTT_DELIVERY, fleet_rules, nats_subjects, nats_users, password_for
from config.errors import ConfigError
from config.secret import read_secret
from tests import conftest
from tests.conftest import require_nats
from tests.support.nats import nats_binary

SECRET = bytes(range(32))


def _users() -> list[dict[str, object]]:
    rules = fleet_rules(SECRET, ["A", "B"], "homeassistant")
    return nats_users(rules, [bcrypt.gensalt(4) for _ in rules])  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("topic_filter", "subjects"),
    [
        ("meters/A/+", ("meters.A.*",)),
        ("meters/A/cmd/#", ("meters.A.cmd.>", "meters.A.cmd")),  # MQTT's a/# matches a itself
        ("meters/+/agg/#", ("meters.*.agg.>", "meters.*.agg")),
        ("homeassistant/status", ("homeassistant.status",)),
        ("$SYS/#", ("$SYS.>", "$SYS")),
        ("#", (">",)),
        ("+", ("*",)),
    ],
)
def test_topic_filters_become_subjects(topic_filter: str, subjects: tuple[str, ...]) -> None:
    assert nats_subjects(topic_filter) == subjects


@pytest.mark.parametrize("bad", ["a.b/c", "a//b", "a/b+", "a/#/b", "a/x#", "", "a b"])
def test_filters_nats_cannot_express_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="topic filter"):
        nats_subjects(bad)


def test_users_carry_the_fleet_rules_as_subjects_and_bcrypt_hashes() -> None:
    users = {str(user["user"]): user for user in _users()}
    assert list(users) == ["bridge", "homeassistant", "observer", "A", "B"]
    for name, user in users.items():
        password = user["password"]
        assert isinstance(password, str)
        assert re.fullmatch(r"\$2b\$04\$[./A-Za-z0-9]{53}", password), password  # bcrypt, never the password
        assert bcrypt.checkpw(password_for(SECRET, name).encode(), password.encode())
        assert not bcrypt.checkpw(password_for(SECRET, "A" if name != "A" else "B").encode(), password.encode())
        assert user["allowed_connection_types"] == ["MQTT"]
    assert users["A"]["permissions"] == {
        "publish": {"allow": ["meters.A.*"]},
        "subscribe": {"allow": ["meters.A.cmd.>", "meters.A.cmd", NATS_MQTT_DELIVERY]},
    }
    assert users["observer"]["permissions"] == {
        "publish": {"deny": [">"]},  # no publish filter: nothing at all
        "subscribe": {
            "allow": [
                "meters.>",
                "meters",
                "bridges.*.status",  # the bridges' availability, not their probes
                "homeassistant.>",
                "homeassistant",
                "$SYS.>",
                "$SYS",
                "$MQTT.sub.>",
            ]
        },
    }
    bridge = users["bridge"]["permissions"]
    assert isinstance(bridge, dict)
    assert bridge["publish"]["allow"] == [
        "meters.*.agg.>",
        "meters.*.agg",
        "meters.*.cmd.>",
        "meters.*.cmd",
        "homeassistant.>",
        "homeassistant",
        "bridges.>",
        "bridges",
    ]


def test_each_node_listens_on_its_ports_and_routes_to_the_others(tmp_path: Path) -> None:
    layout = layout_from_bases(tmp_path, 3, client_port=4222, cluster_port=6222, http_port=8222, mqtt_port=1883)
    configs = cluster_configs(layout, _users())
    assert list(configs) == ["node-1.conf", "node-2.conf", "node-3.conf"]
    two = configs["node-2.conf"]
    assert 'server_name: "node-2"' in two
    assert 'listen: "127.0.0.1:4223"' in two
    assert 'http: "127.0.0.1:8223"' in two
    assert 'listen: "127.0.0.1:6223"' in two
    assert 'routes: ["nats-route://127.0.0.1:6222", "nats-route://127.0.0.1:6224"]' in two
    assert 'listen: "127.0.0.1:1884"' in two
    assert "stream_replicas: 3" in two
    assert f"store_dir: {str(tmp_path / 'node-2')!r}".replace("'", '"') in two
    assert "no_auth_user" not in two
    assert two.count('"allowed_connection_types": ["MQTT"]') == 5
    for user in ("bridge", "homeassistant", "observer", "A", "B"):
        assert password_for(SECRET, user) not in two
    single = node_config(layout_from_bases(tmp_path, 1), 1, [])
    assert "routes: []" in single
    assert "stream_replicas: 1" in single  # never more replicas than nodes
    assert "max_ack_pending: 1024" in two  # nats-server's default: a small fleet's bridge shards fit


@pytest.mark.parametrize("users", [1, 5, 55, 56, 100, 2_000, 10_000, 65_527, 100_000])
def test_a_bridge_owning_every_meter_fits_in_one_session(users: int) -> None:
    """A sharded bridge subscribes once per meter it owns; every subscription's max_ack_pending counts towards the
    session's 65,535."""
    each = max_ack_pending(users)
    assert 1 <= each <= 1024
    if users + SESSION_EXTRA_FILTERS <= MAX_SESSION_ACK_PENDING:
        assert each * (users + SESSION_EXTRA_FILTERS) <= MAX_SESSION_ACK_PENDING
        assert each == 1024 or (each + 1) * (users + SESSION_EXTRA_FILTERS) > MAX_SESSION_ACK_PENDING  # the most


@pytest.mark.parametrize(
    "make",
    [
        lambda out: layout_from_bases(out, 0),
        lambda out: layout_from_bases(out, 10),
        lambda out: layout_from_bases(out, 3, mqtt_port=65534),  # node 3's MQTT port would be 65536
        lambda out: layout_from_bases(out, 3, mqtt_port=4221),  # node 2's MQTT port is node 1's client port
        lambda out: layout_from_bases(out, 3, host="0.0.0.0:1"),
        lambda out: ClusterLayout("127.0.0.1", (NodePorts(1, 2, 3, 0),), out),
    ],
)
def test_bad_layouts_are_refused(tmp_path: Path, make: object) -> None:
    with pytest.raises(ConfigError):
        make(tmp_path)  # type: ignore[operator]


@pytest.fixture
def secret_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No FLEET_* setting leaks in; the secret lives in tmp_path."""
    for key in [k for k in os.environ if k.startswith("FLEET_")]:
        monkeypatch.delenv(key)
    path = tmp_path / "secret" / "mqtt-secret"
    monkeypatch.setenv("FLEET_MQTT_SECRET", str(path))
    return path


def test_nats_config_writes_one_private_file_per_node(
    secret_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEET_HOUSEHOLDS", "A,B,C")
    out = tmp_path / "nats"
    assert main(["nats-config", "--out", str(out), "--nodes", "2", "--mqtt-port", "11883"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["node-1.conf", "node-2.conf"]
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in out.iterdir())
    text = (out / "node-2.conf").read_text()
    assert 'listen: "127.0.0.1:11884"' in text
    assert [m for m in re.findall(r'"user": "([^"]+)"', text)] == ["bridge", "homeassistant", "observer", "A", "B", "C"]
    hashes = dict(re.findall(r'"user": "([^"]+)", "password": "([^"]+)"', text))
    secret = read_secret(secret_file)  # made on first use, as mosquitto-auth does
    assert bcrypt.checkpw(password_for(secret, "C").encode(), hashes["C"].encode())


@pytest.mark.parametrize(
    "argv",
    [
        ["nats-config", "--out", "x", "--nodes", "three"],
        ["nats-config", "--out", "x", "--nodes", "0"],
        ["nats-config", "--out", "x", "--mqtt-port", "70000"],
        ["nats-config", "--out", "x", "--http-port", "4223"],  # node 1's HTTP port is node 2's client port
    ],
)
def test_bad_nats_config_input_is_exit_2(
    secret_file: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert "configuration error" in capsys.readouterr().err


def test_nats_server_accepts_the_configs(secret_file: Path, tmp_path: Path) -> None:
    """nats-server's own check (``-t``) of every node's file."""
    require_nats()
    out = tmp_path / "nats"
    assert main(["nats-config", "--out", str(out)]) == 0
    for path in sorted(out.glob("node-*.conf")):
        done = subprocess.run([nats_binary(), "-t", "-c", str(path)], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stdout + done.stderr


def test_missing_nats_server_fails_under_ci_and_skips_loudly_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest, "nats_missing", lambda: "nats-server not installed")
    monkeypatch.setattr(conftest, "CI", True)
    with pytest.raises(pytest.fail.Exception, match="CI=true and nats-server not installed"):
        conftest.require_nats()
    monkeypatch.setattr(conftest, "CI", False)
    with pytest.raises(pytest.skip.Exception, match="!!! NATS TESTS NOT RUN"):
        conftest.require_nats()
