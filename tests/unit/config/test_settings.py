"""config.settings: defaults, every FLEET_* key, ConfigError naming the key, broker URL forms."""

from __future__ import annotations

import ast
import dataclasses
import re

import pytest

from config.errors import ConfigError
from config.parsing import PROFILE_NAMES
from config.settings import (
    KNOWN_KEYS,
    OPTIONS,
    PREFIX,
    PROGRAMS,
    BrokerAddress,
    Settings,
    load_settings,
    options_for,
    parse_broker_url,
    settings_help,
)
from simulator.profiles.factory import PROFILES
from tests.support.paths import README, ROOT


def test_defaults() -> None:
    settings = load_settings({"PATH": "/usr/bin", "HOME": "/root", "fleet_speed": "not checked: wrong case"})
    assert settings.broker == BrokerAddress("127.0.0.1", 1883, None, None)
    assert (settings.http_host, settings.http_port) == ("127.0.0.1", 5000)
    assert settings.speed == 1.0
    assert settings.start_s is None
    assert settings.profile == "realistic"
    assert settings.climate == "new-delhi"
    assert settings.tz == "UTC"
    assert str(settings.zone()) == "UTC"
    assert settings.seed is None
    assert settings.households == ("A", "B", "C")
    assert (settings.grace_s, settings.history_s, settings.heartbeat_s) == (0, 172_800, 15.0)
    assert settings.log_level == "INFO"
    assert settings.bridge_id == ""  # not set: derived from the secret at start (config.secret.bridge_settings)


def test_bridge_id() -> None:
    assert load_settings({"FLEET_BRIDGE_ID": " bridge-0 "}).bridge_id == "bridge-0"


def test_readme_settings_table_lists_exactly_the_known_keys() -> None:
    """Each FLEET_* key has its row in the README's settings table, and each row is a key the settings know."""
    readme = README.read_text()
    rows = re.findall(r"^\| `(FLEET_[A-Z0-9_]+)` \|", readme, re.MULTILINE)
    assert len(rows) == len(set(rows)), "a setting has two rows"
    assert set(rows) == set(KNOWN_KEYS)


def test_settings_know_the_profiles_by_name() -> None:
    # config.parsing names the profiles without importing the simulator (see PROFILE_NAMES): the two must agree.
    assert tuple(sorted(PROFILES)) == PROFILE_NAMES


def test_readme_settings_table_shows_each_options_readers_and_default() -> None:
    """The README's `read by` and `default` columns are the table's (config.options.OPTIONS)."""
    readme = README.read_text()
    rows = {
        key: (read_by, default.replace("`", ""))
        for key, read_by, default in re.findall(r"^\| `(FLEET_[A-Z0-9_]+)` \| ([^|]*) \| ([^|]*) \|", readme, re.M)
    }
    for option in OPTIONS:
        readers = ", ".join(program for program in PROGRAMS if program in option.readers)
        assert rows[option.key] == (readers, option.default_text()), option.key


def test_blank_values_mean_default() -> None:
    assert load_settings(dict.fromkeys(KNOWN_KEYS, "  ")) == load_settings({})


@pytest.mark.parametrize(
    ("key", "raw", "attribute", "expected"),
    [
        ("FLEET_MQTT_HOST", " broker.local ", "broker", BrokerAddress("broker.local", 1883)),
        ("FLEET_MQTT_PORT", "1884", "broker", BrokerAddress("127.0.0.1", 1884)),
        ("FLEET_MQTT_PORT", "65535", "broker", BrokerAddress("127.0.0.1", 65535)),
        ("FLEET_BROKER", "mqtt://u:p@h:2000", "broker", BrokerAddress("h", 2000, "u", "p")),
        ("FLEET_HTTP_HOST", "0.0.0.0", "http_host", "0.0.0.0"),
        ("FLEET_HTTP_PORT", "8080", "http_port", 8080),
        ("FLEET_SPEED", "60", "speed", 60.0),
        ("FLEET_SPEED", "0.5", "speed", 0.5),
        ("FLEET_SPEED", "100000", "speed", 100_000.0),
        ("FLEET_START", "00:00:00", "start_s", 0),
        ("FLEET_START", "07:05:09", "start_s", 7 * 3600 + 5 * 60 + 9),
        ("FLEET_START", "7:05:09", "start_s", 7 * 3600 + 5 * 60 + 9),
        ("FLEET_START", "23:59:59", "start_s", 86_399),
        ("FLEET_PROFILE", " Classic ", "profile", "classic"),
        ("FLEET_TZ", "Asia/Kolkata", "tz", "Asia/Kolkata"),
        ("FLEET_SEED", "0", "seed", 0),
        ("FLEET_SEED", " 42 ", "seed", 42),
        ("FLEET_SEED", str(2**63 - 1), "seed", 2**63 - 1),
        ("FLEET_HOUSEHOLDS", "A, C,,x_9", "households", ("A", "C", "x_9")),
        ("FLEET_GRACE_S", "0", "grace_s", 0),
        ("FLEET_GRACE_S", "3600", "grace_s", 3600),
        ("FLEET_HISTORY_S", "3600", "history_s", 3600),
        ("FLEET_HEARTBEAT_S", "2.5", "heartbeat_s", 2.5),
        ("FLEET_LOG_LEVEL", "debug", "log_level", "DEBUG"),
        ("FLEET_LOG_LEVEL", "Warning", "log_level", "WARNING"),
        ("FLEET_MQTT_ANONYMOUS", "true", "mqtt_anonymous", True),
        ("FLEET_MQTT_ANONYMOUS", "no", "mqtt_anonymous", False),
        ("FLEET_MQTT_SECRET", " /run/fleet/mqtt-secret ", "mqtt_secret", "/run/fleet/mqtt-secret"),
        ("FLEET_MQTT_TLS_CA", "ca.pem", "mqtt_tls_ca", "ca.pem"),
        ("FLEET_MQTT_TLS_CA", "ca.pem", "broker", BrokerAddress("127.0.0.1", 1883, tls=True, tls_ca="ca.pem")),
    ],
)
def test_each_key(key: str, raw: str, attribute: str, expected: object) -> None:
    assert key in KNOWN_KEYS
    assert getattr(load_settings({key: raw}), attribute) == expected


def test_broker_url_overrides_host_and_port() -> None:
    env = {"FLEET_MQTT_HOST": "ignored", "FLEET_MQTT_PORT": "1999", "FLEET_BROKER": "mqtt://real:1884"}
    assert load_settings(env).broker == BrokerAddress("real", 1884)


@pytest.mark.parametrize("key", ["FLEET_SPEEED", "FLEET_", "FLEET_mqtt_host", "FLEET_PORT"])
def test_unknown_key_is_named(key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({key: "1", "FLEET_SPEED": "2"})
    assert info.value.key == key
    assert str(info.value).startswith(f"{key}: unknown setting")


@pytest.mark.parametrize(
    ("key", "raw"),
    [
        ("FLEET_MQTT_PORT", "0"),
        ("FLEET_MQTT_PORT", "65536"),
        ("FLEET_MQTT_PORT", "http"),
        ("FLEET_MQTT_PORT", "18.5"),
        ("FLEET_HTTP_PORT", "-1"),
        ("FLEET_BROKER", "tcp://h:1883"),
        ("FLEET_SPEED", "0"),
        ("FLEET_SPEED", "-2"),
        ("FLEET_SPEED", "fast"),
        ("FLEET_SPEED", "nan"),
        ("FLEET_SPEED", "inf"),
        ("FLEET_SPEED", "100001"),
        ("FLEET_START", "24:00:00"),
        ("FLEET_START", "12:60:00"),
        ("FLEET_START", "12:00:60"),
        ("FLEET_START", "12:00"),
        ("FLEET_START", "noon"),
        ("FLEET_START", "07:5:09"),
        ("FLEET_PROFILE", "random"),
        ("FLEET_TZ", "Mars/Olympus"),
        ("FLEET_TZ", "../etc/passwd"),
        ("FLEET_SEED", "-1"),
        ("FLEET_SEED", "1.5"),
        ("FLEET_SEED", str(2**63)),
        ("FLEET_HOUSEHOLDS", ","),
        ("FLEET_HOUSEHOLDS", "A,B+"),
        ("FLEET_HOUSEHOLDS", "A,#"),
        ("FLEET_HOUSEHOLDS", "A/B"),
        ("FLEET_HOUSEHOLDS", "a" * 65),
        ("FLEET_GRACE_S", "-1"),
        ("FLEET_GRACE_S", "3601"),
        ("FLEET_HISTORY_S", str(31 * 86_400 + 1)),
        ("FLEET_HEARTBEAT_S", "0"),
        ("FLEET_LOG_LEVEL", "verbose"),
        ("FLEET_MQTT_ANONYMOUS", "maybe"),
        ("FLEET_MQTT_TLS_CERT", "cert.pem"),  # without FLEET_MQTT_TLS_KEY
        ("FLEET_MQTT_TLS_KEY", "key.pem"),
        ("FLEET_BRIDGE_ID", "fleet-bridge"),  # the bridge's ids start with bridge-
        ("FLEET_BRIDGE_ID", "bridge-"),
        ("FLEET_BRIDGE_ID", "meter-A"),
        ("FLEET_BRIDGE_ID", "bridge-" + "x" * 17),  # 24 characters: over MQTT 3.1.1's 23
        ("FLEET_BRIDGE_ID", "bridge-a/b"),
    ],
)
def test_bad_value_names_key(key: str, raw: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({key: raw})
    assert info.value.key == key
    assert str(info.value).startswith(f"{key}: ")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtt://broker", BrokerAddress("broker", 1883)),
        ("mqtt://broker/", BrokerAddress("broker", 1883)),
        ("mqtt://10.0.0.5:1884", BrokerAddress("10.0.0.5", 1884)),
        ("mqtt://[::1]:1885", BrokerAddress("::1", 1885)),
        ("mqtt://user:secret@broker:1886", BrokerAddress("broker", 1886, "user", "secret")),
        ("mqtt://user@broker", BrokerAddress("broker", 1883, "user", None)),
        ("mqtt://us%40er:p%3Ass%2Fw@broker:1887", BrokerAddress("broker", 1887, "us@er", "p:ss/w")),
        ("mqtts://broker", BrokerAddress("broker", 8883, tls=True)),
        ("mqtts://broker:1883", BrokerAddress("broker", 1883, tls=True)),
    ],
)
def test_broker_url(url: str, expected: BrokerAddress) -> None:
    assert parse_broker_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "broker:1883",
        "tcp://broker:1883",
        "http://broker",
        "mqtt://",
        "mqtt://:1883",
        "mqtt://broker:port",
        "mqtt://broker:65536",
        "mqtt://broker/path",
        "mqtt://broker?x=1",
        "mqtt://broker#frag",
    ],
)
def test_bad_broker_url(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_broker_url(url, key="X_KEY")
    assert info.value.key == "X_KEY"


def test_broker_url_port_zero() -> None:
    with pytest.raises(ConfigError):
        parse_broker_url("mqtt://broker:0")


def test_url_hides_password() -> None:
    address = parse_broker_url("mqtt://user:secret@broker:1886")
    assert address.url() == "mqtt://user@broker:1886"
    assert BrokerAddress("h", 1).url() == "mqtt://h:1"
    assert BrokerAddress("h", 1, tls=True).url() == "mqtts://h:1"


def test_broker_tls_cert_and_key_together() -> None:
    settings = load_settings({"FLEET_MQTT_TLS_CERT": "c.pem", "FLEET_MQTT_TLS_KEY": "k.pem"})
    assert (settings.mqtt_tls_cert, settings.mqtt_tls_key) == ("c.pem", "k.pem")
    assert not settings.broker.tls  # the broker's own certificate says nothing about how clients connect


def test_login_url_credentials_win_over_the_fleet_secret() -> None:
    from config.credentials import password_for

    secret = bytes(32)
    assert BrokerAddress("h", 1).login("A") is None  # no secret: anonymous
    assert BrokerAddress("h", 1, secret=secret).login("A") == ("A", password_for(secret, "A"))
    assert BrokerAddress("h", 1, secret=secret).login("bridge") == ("bridge", password_for(secret, "bridge"))
    assert BrokerAddress("h", 1, "u", "p", secret=secret).login("A") == ("u", "p")
    assert BrokerAddress("h", 1, "u", None).login("A") == ("u", None)
    assert "secret" not in repr(BrokerAddress("h", 1, secret=secret))


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("90s", 90), ("15m", 900), ("24h", 86_400), ("7d", 604_800)])
def test_parse_duration(text: str, seconds: int) -> None:
    from config.settings import parse_duration

    assert parse_duration(text, "--warmup") == seconds


@pytest.mark.parametrize("text", ["", "h", "1.5h", "-1h", "2w", "25h"])
def test_parse_duration_rejects(text: str) -> None:
    from config.errors import ConfigError
    from config.settings import parse_duration

    with pytest.raises(ConfigError, match="--warmup"):
        parse_duration(text, "--warmup", high_s=86_400)


# --- broker lists ----------------------------------------------------------------------------------------------------


def test_broker_list_keeps_order_and_drops_repeats() -> None:
    from config.settings import parse_broker_urls

    broker = parse_broker_urls("mqtt://h:1883, mqtt://u:p@h:1884,mqtt://h:1885,mqtt://h:1883")
    assert [a.url() for a in broker.addresses()] == ["mqtt://h:1883", "mqtt://u@h:1884", "mqtt://h:1885"]
    assert (broker.host, broker.port, broker.url()) == ("h", 1883, "mqtt://h:1883")  # "the" broker: the first
    assert broker.addresses()[1].login("A") == ("u", "p")  # each URL keeps its own login
    assert broker.urls() == "mqtt://h:1883,mqtt://u@h:1884,mqtt://h:1885"
    assert all(not a.fallbacks for a in broker.addresses())


def test_one_url_is_exactly_that_address() -> None:
    from config.settings import parse_broker_urls

    assert parse_broker_urls("mqtt://h:1884") == BrokerAddress("h", 1884)
    assert load_settings({"FLEET_BROKER": "mqtt://h:1884,mqtt://h:1884"}).broker == BrokerAddress("h", 1884)


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        ("mqtt://a:1,,mqtt://b:2", "entry 2 of 3 is empty"),
        ("mqtt://a:1,", "entry 2 of 2 is empty"),
        (",mqtt://a:1", "entry 1 of 2 is empty"),
        ("mqtt://a:1,mqtts://b:2", "'mqtts://b:2' does not use the scheme"),
        ("mqtt://a:1,mqtt://b:port", "mqtt://b:port"),
        ("mqtt://a:1,tcp://b:2", "tcp://b:2"),
    ],
)
def test_bad_broker_list_names_the_setting_and_the_entry(text: str, bad: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({"FLEET_BROKER": text})
    assert info.value.key == "FLEET_BROKER"
    assert bad in str(info.value)


def test_tls_ca_applies_to_every_broker_of_the_list() -> None:
    broker = load_settings({"FLEET_BROKER": "mqtt://a:1,mqtt://b:2", "FLEET_MQTT_TLS_CA": "ca.pem"}).broker
    assert [(a.host, a.tls, a.tls_ca) for a in broker.addresses()] == [("a", True, "ca.pem"), ("b", True, "ca.pem")]


def test_each_client_starts_on_its_own_node_spread_evenly() -> None:
    from config.settings import parse_broker_urls
    from config.shard import shard_of

    broker = parse_broker_urls("mqtt://h:1,mqtt://h:2,mqtt://h:3")
    ids = [f"M{i}" for i in range(3000)]
    firsts = [broker.order_for(meter_id)[0].port for meter_id in ids]
    assert firsts == [shard_of(meter_id, 3) + 1 for meter_id in ids]
    assert all(800 <= firsts.count(port) <= 1200 for port in (1, 2, 3))
    for meter_id in ids[:50]:  # every node once per round, and the same order every time
        order = broker.order_for(meter_id)
        assert sorted(a.port for a in order) == [1, 2, 3]
        assert order == broker.order_for(meter_id)


def test_the_meters_of_a_dead_node_spread_over_the_others() -> None:
    """Plain "next in the list" would send every meter of node 1 to node 2; each meter's own order spreads them."""
    from config.settings import parse_broker_urls

    broker = parse_broker_urls("mqtt://h:1,mqtt://h:2,mqtt://h:3")
    orphans = [order for i in range(3000) if (order := broker.order_for(f"M{i}"))[0].port == 1]
    seconds = [order[1].port for order in orphans]
    assert len(orphans) > 800
    assert all(len(orphans) * 0.4 <= seconds.count(port) <= len(orphans) * 0.6 for port in (2, 3))


# --- the table of options: grouping by program -----------------------------------------------------------------------

_ATTRIBUTE_RE = re.compile(r"\bsettings\.([a-z_]+)\b")
# FLEET_BROKER's default is built from these (load_settings): a client that reads `broker` reads them too.
_FEEDS = {"broker": {"mqtt_host", "mqtt_port"}}


def _fields_read_by_helpers() -> dict[str, set[str]]:
    """For each function of config/ (settings.py aside) and each method of Settings: the Settings fields it reads."""
    settings_fields = {f.name for f in dataclasses.fields(Settings)}
    tree = ast.parse((ROOT / "config" / "settings.py").read_text())
    helpers: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "Settings":
            for method in node.body:
                if isinstance(method, ast.FunctionDef):
                    helpers[method.name] = {
                        n.attr
                        for n in ast.walk(method)
                        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "self"
                    } & settings_fields
    for path in sorted((ROOT / "config").rglob("*.py")):
        if path.name == "settings.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and any(a.arg == "settings" for a in node.args.args):
                helpers[node.name] = set(_ATTRIBUTE_RE.findall(ast.unparse(node)))
                helpers[node.name] |= {f"call:{n.func.id}" for n in ast.walk(node) if _is_call(n)}
    return helpers


def _is_call(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name)


def _fields_read_by(program: str) -> set[str]:
    """What a grep of ``program``'s package finds it reading of Settings: ``settings.<field>``, the Settings methods
    and config helpers it calls on the settings, and what those read in turn."""
    settings_fields = {f.name for f in dataclasses.fields(Settings)}
    helpers = _fields_read_by_helpers()
    text = "\n".join(path.read_text() for path in sorted((ROOT / program).rglob("*.py")))
    names = set(_ATTRIBUTE_RE.findall(text))
    names |= {name for name in helpers if re.search(rf"\b{name}\(", text) and name not in names}
    for _ in range(len(helpers) + 1):  # helpers calling helpers: a fixpoint, bounded by their number
        more = {call[5:] for name in names & helpers.keys() for call in helpers[name] if call.startswith("call:")}
        more |= {n for name in names & helpers.keys() for n in helpers[name] if not n.startswith("call:")}
        if more <= names:
            break
        names |= more
    fields = names & settings_fields
    for field, feeders in _FEEDS.items():
        if field in fields:
            fields |= feeders
    return fields


@pytest.mark.parametrize("program", PROGRAMS)
def test_each_programs_group_is_what_its_package_reads(program: str) -> None:
    """The table's `readers` of each option agree with a grep of each program's package: it reads every option of its
    group, and no option outside it."""
    declared = {option.field for option in options_for(program)}
    read = _fields_read_by(program)
    assert read - declared == set(), f"{program} reads settings the table does not give it"
    assert declared - read == set(), f"the table gives {program} settings it never reads"


def test_every_option_fills_one_field_and_is_read_by_someone() -> None:
    assert [option.field for option in OPTIONS] == list(dict.fromkeys(option.field for option in OPTIONS))
    assert {option.field for option in OPTIONS} == {f.name for f in dataclasses.fields(Settings)}
    assert all(option.key.startswith(PREFIX) for option in OPTIONS)
    assert all(option.readers and option.readers <= set(PROGRAMS) for option in OPTIONS)


def test_defaults_come_from_the_table() -> None:
    settings = load_settings({})
    for option in OPTIONS:
        if option.key != "FLEET_BROKER":  # built from FLEET_MQTT_HOST and FLEET_MQTT_PORT
            assert getattr(settings, option.field) == option.default, option.key


def test_help_lists_each_programs_settings_with_their_defaults() -> None:
    text = settings_help("broker")
    assert "FLEET_MQTT_TLS_CERT" in text
    assert "FLEET_HTTP_PORT" not in text  # the bridge's
    assert "FLEET_MQTT_PORT: broker port (default 1883)" in text
    assert "FLEET_SEED: fleet seed, a whole number >= 0 (default fresh, logged)" in settings_help("simulator")
    assert KNOWN_KEYS["FLEET_HOUSEHOLDS"].endswith("(default A,B,C)")
    with pytest.raises(ValueError, match="unknown program"):
        options_for("dashboard")
