"""python -m broker mosquitto-auth / password, in process: files written (0600), passwords printed, bad input exit 2."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from broker.__main__ import main
from broker.auth_files import Owner, parse_owner
from config.credentials import password_for
from config.errors import ConfigError
from config.secret import read_secret


@pytest.fixture
def secret_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No FLEET_* setting leaks in; the secret lives in tmp_path."""
    for key in [k for k in os.environ if k.startswith("FLEET_")]:
        monkeypatch.delenv(key)
    path = tmp_path / "secret" / "mqtt-secret"
    monkeypatch.setenv("FLEET_MQTT_SECRET", str(path))
    return path


def test_mosquitto_auth_writes_private_files(
    secret_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEET_HOUSEHOLDS", "A,B")
    out = tmp_path / "auth"
    owner = f"{os.getuid()}:{os.getgid()}"  # giving files to oneself works without root
    assert main(["mosquitto-auth", "--out", str(out), "--owner", owner, "--secret-owner", str(os.getuid())]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["dynsec.json", "observer-password"]
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in out.iterdir())
    dynsec = json.loads((out / "dynsec.json").read_text())
    assert [client["username"] for client in dynsec["clients"]] == ["bridge", "homeassistant", "observer", "A", "B"]
    assert {client["username"]: client.get("clientid") for client in dynsec["clients"]} == {
        "bridge": None,
        "homeassistant": None,
        "observer": None,
        "A": "meter-A",
        "B": "meter-B",
    }
    role_b = next(role for role in dynsec["roles"] if role["rolename"] == "B")
    assert {"acltype": "publishClientSend", "topic": "meters/B/+", "allow": True} in role_b["acls"]
    secret = read_secret(secret_file)
    assert (out / "observer-password").read_text() == password_for(secret, "observer") + "\n"
    first = (out / "dynsec.json").read_text()
    assert main(["mosquitto-auth", "--out", str(out)]) == 0  # again: the same users, fresh salts
    assert (out / "dynsec.json").read_text() != first
    assert read_secret(secret_file) == secret


@pytest.mark.parametrize("user", ["observer", "bridge", "A", "A-0001"])
def test_password_prints_the_derived_password(secret_file: Path, user: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["password", user]) == 0
    assert capsys.readouterr().out == password_for(read_secret(secret_file), user) + "\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["password", "meters/#"],
        ["mosquitto-auth", "--out", "x", "--owner", "fleet:"],
        ["--port", "0"],
    ],
)
def test_bad_input_is_exit_2(secret_file: Path, argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith("broker: configuration error:")


def test_reserved_household_name_is_exit_2(
    secret_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FLEET_HOUSEHOLDS", "A,observer")
    assert main(["mosquitto-auth", "--out", str(tmp_path / "auth")]) == 2
    assert "FLEET_HOUSEHOLDS" in capsys.readouterr().err


def test_parse_owner() -> None:
    assert parse_owner("1883:1883") == Owner(1883, 1883)
    assert parse_owner("fleet") == Owner("fleet", None)
    assert parse_owner("fleet:staff") == Owner("fleet", "staff")
    for bad in ("", ":1", "a:"):
        with pytest.raises(ConfigError, match="--owner"):
            parse_owner(bad)
