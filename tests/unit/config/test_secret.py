"""The fleet secret file: made once (0600), shared by every process that races to make it; clients' credentials."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from config.credentials import bridge_client_id, password_for
from config.errors import ConfigError
from config.secret import bridge_settings, client_broker, load_or_create_secret, read_secret, secret_path
from config.settings import load_settings


def test_made_once_private_then_read(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "mqtt-secret"
    first = load_or_create_secret(path)
    assert len(first) == 32
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.read_text() == first.hex() + "\n"
    assert load_or_create_secret(path) == first == read_secret(path)
    assert [p.name for p in path.parent.iterdir()] == ["mqtt-secret"]


def test_racing_processes_end_with_one_secret(tmp_path: Path) -> None:
    """Many starters at once (``make up``): exactly one secret wins, everyone reads it, no temporary file is left."""
    path = tmp_path / "mqtt-secret"
    starters = 24
    barrier = threading.Barrier(starters)

    def start() -> bytes:
        barrier.wait(timeout=10)
        return load_or_create_secret(path)

    with ThreadPoolExecutor(starters) as pool:
        secrets = list(pool.map(lambda _: start(), range(starters)))
    assert len(set(secrets)) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["mqtt-secret"]


@pytest.mark.parametrize("text", ["", "not hex", "00" * 16, "00" * 33])
def test_a_file_that_is_not_a_secret_is_a_config_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "mqtt-secret"
    path.write_text(text)
    with pytest.raises(ConfigError, match="FLEET_MQTT_SECRET"):
        load_or_create_secret(path)


def test_secret_path(tmp_path: Path) -> None:
    assert secret_path(load_settings({})) == Path("data") / "mqtt-secret"
    assert secret_path(load_settings({"FLEET_DATA_DIR": "/var/fleet"})) == Path("/var/fleet/mqtt-secret")
    env = {"FLEET_DATA_DIR": "/var/fleet", "FLEET_MQTT_SECRET": str(tmp_path / "s")}
    assert secret_path(load_settings(env)) == tmp_path / "s"


def test_client_broker(tmp_path: Path) -> None:
    path = tmp_path / "mqtt-secret"
    env = {"FLEET_MQTT_SECRET": str(path), "FLEET_BROKER": "mqtt://broker:1884"}
    broker = client_broker(load_settings(env))
    secret = read_secret(path)
    assert broker.login("A") == ("A", password_for(secret, "A"))
    assert (broker.host, broker.port, broker.tls) == ("broker", 1884, False)

    tls = client_broker(load_settings({**env, "FLEET_MQTT_TLS_CA": "ca.pem"}), "mqtt://other:8883")
    assert (tls.host, tls.port, tls.tls, tls.tls_ca) == ("other", 8883, True, "ca.pem")
    assert tls.secret == secret

    own = client_broker(load_settings(env), "mqtt://me:pw@broker")
    assert (own.login("A"), own.secret) == (("me", "pw"), None)


def test_anonymous_clients_need_no_secret(tmp_path: Path) -> None:
    path = tmp_path / "mqtt-secret"
    broker = client_broker(load_settings({"FLEET_MQTT_SECRET": str(path), "FLEET_MQTT_ANONYMOUS": "true"}))
    assert broker.login("A") is None
    assert not path.exists()


def test_bridge_settings_resolve_the_bridges_client_id(tmp_path: Path) -> None:
    """Derived from the secret by default, FLEET_BRIDGE_ID if set, bridge-fleet without a secret."""
    path = tmp_path / "mqtt-secret"
    env = {"FLEET_MQTT_SECRET": str(path)}
    derived = bridge_settings(load_settings(env))
    assert derived.bridge_id == bridge_client_id(read_secret(path))
    assert derived.broker == client_broker(load_settings(env))
    assert bridge_settings(load_settings({**env, "FLEET_BRIDGE_ID": "bridge-0"})).bridge_id == "bridge-0"
    assert bridge_settings(load_settings(env), "mqtt://me:pw@broker").bridge_id == "bridge-fleet"
    anonymous = {"FLEET_MQTT_SECRET": str(tmp_path / "none"), "FLEET_MQTT_ANONYMOUS": "true"}
    assert bridge_settings(load_settings(anonymous)).bridge_id == "bridge-fleet"


def test_client_broker_lists(tmp_path: Path) -> None:
    """Every broker of a list gets the TLS CA and, unless its URL has a user, the fleet secret."""
    path = tmp_path / "mqtt-secret"
    env = {"FLEET_MQTT_SECRET": str(path), "FLEET_MQTT_TLS_CA": "ca.pem"}
    broker = client_broker(load_settings(env), "mqtt://a:1,mqtt://me:pw@b:2,mqtt://c:3")
    secret = read_secret(path)
    assert [(a.host, a.tls, a.tls_ca) for a in broker.addresses()] == [
        ("a", True, "ca.pem"),
        ("b", True, "ca.pem"),
        ("c", True, "ca.pem"),
    ]
    assert [a.login("A") for a in broker.addresses()] == [
        ("A", password_for(secret, "A")),
        ("me", "pw"),
        ("A", password_for(secret, "A")),
    ]
    own = bridge_settings(load_settings(env), "mqtt://me:pw@a:1,mqtt://b:2")
    assert own.bridge_id == bridge_client_id(secret)  # the second broker's login derives from the secret
    with pytest.raises(ConfigError, match="--broker"):
        client_broker(load_settings(env), "mqtt://a:1,,mqtt://b:2")
