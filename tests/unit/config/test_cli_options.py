"""Each entry point's ``with_options``: the command line's overrides merged into the settings (pure)."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from config.errors import ConfigError
from config.settings import BrokerAddress, load_settings


def test_simulator_run_options_override_the_settings() -> None:
    from simulator.cli import build_parser as _parser
    from simulator.cli import with_options

    settings = load_settings({"FLEET_SPEED": "2", "FLEET_SEED": "1", "FLEET_TZ": "Europe/Paris", "FLEET_DATA_DIR": "d"})
    words = ["run", "--household", "A", "--speed", "60", "--start", "07:00:05", "--seed", "5", "--profile", "Classic"]
    words += ["--climate", "phoenix", "--tz", "Asia/Kolkata", "--broker", "mqtt://h:1884,mqtt://h:1885"]
    merged = with_options(settings, _parser("run").parse_args(words))
    assert merged == dataclasses.replace(
        settings,
        speed=60.0,
        start_s=7 * 3600 + 5,
        seed=5,
        profile="classic",
        climate="phoenix",
        tz="Asia/Kolkata",
        broker=BrokerAddress("h", 1884, fallbacks=(BrokerAddress("h", 1885),)),
    )
    assert settings.speed == 2.0  # the settings themselves are left as they were


def test_simulator_without_options_keeps_the_settings() -> None:
    from simulator.cli import build_parser as _parser
    from simulator.cli import with_options

    settings = load_settings({"FLEET_SPEED": "2", "FLEET_PROFILE": "classic", "FLEET_START": "01:02:03"})
    for words in (["run", "--household", "A"], ["generate"], ["plot", "--household", "A", "--date", "x"]):
        assert with_options(settings, _parser(words[0]).parse_args([*words, "--out", "o"])) == settings


def test_simulator_generate_takes_the_common_options() -> None:
    from simulator.cli import build_parser as _parser
    from simulator.cli import with_options

    args = _parser("generate").parse_args(
        ["generate", "--out", "x", "--seed", "7", "--tz", "UTC", "--climate", "brisbane"]
    )
    merged = with_options(load_settings({"FLEET_TZ": "Asia/Kolkata"}), args)
    assert (merged.seed, merged.tz, merged.climate) == (7, "UTC", "brisbane")


@pytest.mark.parametrize(
    ("words", "key"),
    [
        (["--speed", "0"], "--speed"),
        (["--start", "25:00:00"], "--start"),
        (["--seed", "-1"], "--seed"),
        (["--profile", "random"], "--profile"),
        (["--climate", "mars"], "--climate"),
        (["--tz", "Mars/Olympus"], "--tz"),
        (["--broker", "tcp://h:1"], "--broker"),
    ],
)
def test_simulator_bad_option_names_the_option(words: list[str], key: str) -> None:
    from simulator.cli import build_parser as _parser
    from simulator.cli import with_options

    args = _parser("run").parse_args(["run", "--household", "A", *words])
    with pytest.raises(ConfigError) as info:
        with_options(load_settings({}), args)
    assert info.value.key == key


def test_bridge_options_override_the_settings() -> None:
    from bridge.__main__ import with_options

    settings = load_settings({"FLEET_HTTP_HOST": "10.0.0.1", "FLEET_HTTP_PORT": "8000", "FLEET_MQTT_TLS_CA": "ca.pem"})
    args = argparse.Namespace(broker="mqtt://b:1884", host="0.0.0.0", port="8080")
    merged = with_options(settings, args)
    assert merged == dataclasses.replace(settings, broker=BrokerAddress("b", 1884), http_host="0.0.0.0", http_port=8080)
    assert with_options(settings, argparse.Namespace(broker=None, host=None, port=None)) == settings
    with pytest.raises(ConfigError) as info:
        with_options(settings, argparse.Namespace(broker=None, host=None, port="99999"))
    assert info.value.key == "--port"


def test_broker_options_override_the_settings_of_the_embedded_broker_only() -> None:
    from broker.__main__ import _parser, with_options

    settings = load_settings({"FLEET_MQTT_HOST": "10.0.0.1", "FLEET_MQTT_PORT": "1999"})
    merged = with_options(settings, _parser().parse_args(["--host", "0.0.0.0", "--port", "1884"]))
    assert merged == dataclasses.replace(settings, mqtt_host="0.0.0.0", mqtt_port=1884)
    assert with_options(settings, _parser().parse_args([])) == settings
    # nats-config's --host is its nodes' address, not the embedded broker's
    assert with_options(settings, _parser().parse_args(["nats-config", "--out", "d", "--host", "0.0.0.0"])) == settings
    with pytest.raises(ConfigError) as info:
        with_options(settings, _parser().parse_args(["--port", "0"]))
    assert info.value.key == "--port"
