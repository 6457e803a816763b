"""Fleet credentials: derived passwords, client ids, the rules, and each broker's rendering of them, checked with
amqtt's own plugins (Mosquitto's renderings are checked by the real Mosquitto in every integration test that runs
it)."""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import warnings
from pathlib import Path

import pytest
from amqtt.contexts import Action, BaseContext
from amqtt.plugins.authentication import FileAuthPlugin
from amqtt.plugins.topic_checking import TopicAccessControlListPlugin
from amqtt.session import Session

from broker.amqtt_config import AmqttAuth, amqtt_config
from broker.client_ids import ClientIdPlugin
from broker.embedded import make_broker
from config.credentials import (
    MOSQUITTO_ITERATIONS,
    SERVICE_USERS,
    Rule,
    amqtt_acls,
    amqtt_password_file,
    bridge_client_id,
    check_meter_ids,
    client_id_refusal,
    fleet_rules,
    meter_client_id,
    meter_password,
    mosquitto_dynsec_config,
    mosquitto_hash,
    password_for,
)
from config.errors import ConfigError

SECRET = bytes(range(32))
METERS = ("A", "B", "A-0001")


def _rules() -> list[Rule]:
    return fleet_rules(SECRET, METERS, "homeassistant")


def test_passwords_are_derived_stable_and_distinct() -> None:
    users = [*SERVICE_USERS, *METERS]
    passwords = [password_for(SECRET, user) for user in users]
    assert passwords == [password_for(SECRET, user) for user in users]
    assert len(set(passwords)) == len(users)
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{43}", p) for p in passwords)  # 256 bits, base64url, no padding
    assert password_for(SECRET, "A") == meter_password(SECRET, "A") != password_for(bytes(32), "A")


def test_meter_ids_that_are_service_users_or_invalid_are_refused() -> None:
    assert check_meter_ids(["A", "B", "A"]) == ("A", "B")
    for bad in ("bridge", "observer", "homeassistant", "A/B", "#", ""):
        with pytest.raises(ConfigError, match="FLEET_HOUSEHOLDS"):
            check_meter_ids([bad])


def test_rules_per_user() -> None:
    rules = {rule.username: rule for rule in _rules()}
    assert list(rules) == [*SERVICE_USERS, *METERS]
    assert (rules["A"].publish, rules["A"].subscribe) == (("meters/A/+",), ("meters/A/cmd/#",))
    bridge = rules["bridge"]
    assert set(bridge.publish) == {"meters/+/agg/#", "meters/+/cmd/#", "homeassistant/#", "bridges/#"}
    assert set(bridge.subscribe) == {"meters/#", "homeassistant/#", "bridges/#"}
    assert rules["homeassistant"].publish == ("homeassistant/status",)
    assert "bridges/+/status" in rules["homeassistant"].subscribe  # the bridge's availability, for its entities
    assert rules["observer"].publish == ()
    assert "bridges/+/status" in rules["observer"].subscribe
    assert "password" not in repr(rules["A"])
    assert rules["A"].password not in repr(rules["A"])


def test_mosquitto_hash_is_what_mosquitto_ctrl_dynsec_writes() -> None:
    """The vector: ``mosquitto_ctrl dynsec init`` (Mosquitto 2.0.11) with password pw123 wrote this salt and hash."""
    salt = base64.b64decode("KjaCdvc7u7C9Rx6K")
    expected = "J6mw/7MBhtU7hAdc30c7gEFynk3bQJLnBbxItwCM0nPmB7Aq1CeXe+x0Y8vBDiwgDNQchLD+GKfw49ZWZ5yZUA=="
    assert mosquitto_hash("pw123", salt, 101) == expected
    assert MOSQUITTO_ITERATIONS == 101


def test_mosquitto_dynsec_config() -> None:
    rules = _rules()
    config = mosquitto_dynsec_config(rules, [bytes(12)] * len(rules))
    clients = {client["username"]: client for client in config["clients"]}
    assert list(clients) == [rule.username for rule in rules]
    assert clients["A"]["clientid"] == "meter-A"
    assert clients["A-0001"]["clientid"] == "meter-A-0001"
    assert all("clientid" not in clients[user] for user in SERVICE_USERS)  # dynsec binds exact ids only
    assert clients["A"]["password"] == mosquitto_hash(password_for(SECRET, "A"), bytes(12))
    assert clients["A"]["roles"] == [{"rolename": "A"}]
    roles = {role["rolename"]: role["acls"] for role in config["roles"]}
    assert roles["A"] == [
        {"acltype": "publishClientSend", "topic": "meters/A/+", "allow": True},
        {"acltype": "subscribePattern", "topic": "meters/A/cmd/#", "allow": True},
        {"acltype": "publishClientReceive", "topic": "meters/A/cmd/#", "allow": True},
    ]
    assert not [acl for acl in roles["observer"] if acl["acltype"] == "publishClientSend"]
    assert config["defaultACLAccess"] == {
        "publishClientSend": False,
        "publishClientReceive": False,
        "subscribe": False,
        "unsubscribe": True,
    }
    with pytest.raises(ValueError, match="zip"):
        mosquitto_dynsec_config(rules, [bytes(12)])


@pytest.mark.parametrize(
    ("user", "client_id", "allowed"),
    [
        ("A", "meter-A", True),
        ("A", "meter-B", False),  # another meter's
        ("A", "meter-A2", False),
        ("A", "meter-a", False),
        ("A", "A", False),
        ("A", "", False),
        ("A", "bridge-x", False),
        ("A", "fleet-bridge", False),  # the old default id of the bridge
        ("bridge-1", "meter-bridge-1", True),  # a meter whose id looks like a prefix is still a meter
        ("bridge-1", "bridge-1", False),
        ("bridge", "bridge-fleet", True),
        ("bridge", "bridge-0", True),
        ("bridge", "fleet-bridge", False),  # the bridge uses bridge- ids only
        ("bridge", "meter-A", False),
        ("bridge", "observer-1", False),
        ("bridge", "", False),
        ("observer", "observer-1", True),
        ("observer", "mosq-AbC", True),  # mosquitto_sub's default
        ("observer", "", True),
        ("observer", "bridge-x", False),
        ("observer", "meter-A", False),
        ("observer", "homeassistant-1", False),
        ("homeassistant", "homeassistant-1", True),
        ("homeassistant", "4fZq1TbYc0", True),  # Home Assistant's default id is random
        ("homeassistant", "observer-1", False),
        ("homeassistant", "bridge-fleet", False),
        (None, "meter-A", False),  # no user name: nothing
        ("", "observer-1", False),
    ],
)
def test_client_id_rules(user: str | None, client_id: str, allowed: bool) -> None:
    refusal = client_id_refusal(user, client_id)
    assert (refusal is None) == allowed, refusal
    if refusal is not None:
        assert refusal  # says why


def test_client_ids_of_meters_and_bridge() -> None:
    assert meter_client_id("A-0001") == "meter-A-0001"
    bridge_id = bridge_client_id(SECRET)
    assert bridge_id == bridge_client_id(SECRET) != bridge_client_id(bytes(32))
    assert re.fullmatch(r"bridge-[a-z2-7]{12}", bridge_id), bridge_id
    assert len(bridge_id) <= 23  # what every MQTT 3.1.1 broker must accept
    assert client_id_refusal("bridge", bridge_id) is None
    with pytest.raises(ValueError, match="too short"):
        bridge_client_id(b"short")


def test_amqtt_client_id_plugin() -> None:
    """The plugin answers the rules above (the broker asks it before it touches a session: tests/integration)."""
    plugin = ClientIdPlugin(_context(ClientIdPlugin.Config()))

    def authenticate(user: str | None, client_id: str) -> bool:
        session = _session(user, "x")
        session.client_id = client_id
        return bool(asyncio.run(plugin.authenticate(session=session)))

    assert authenticate("A", "meter-A")
    assert not authenticate("A", "meter-B")
    assert authenticate("observer", "mosq-1")
    assert not authenticate("observer", "bridge-1")


def _context(config: object) -> BaseContext:
    context = BaseContext()
    context.logger = logging.getLogger("amqtt-test")
    context.config = config
    return context


def _session(username: str | None, password: str | None) -> Session:
    session = Session()
    session.username, session.password = username, password
    return session


def test_amqtt_file_auth_plugin_verifies_the_password_file(tmp_path: Path) -> None:
    rules = _rules()
    path = tmp_path / "passwords"
    path.write_text(amqtt_password_file(rules, [bytes(range(16))] * len(rules)))
    assert all(line.split(":", 1)[1].startswith("$argon2id$v=19$m=64,t=1,p=1$") for line in path.read_text().split())
    plugin = FileAuthPlugin(_context(FileAuthPlugin.Config(password_file=path)))

    def authenticate(username: str | None, password: str | None) -> bool | None:
        result: bool | None = asyncio.run(plugin.authenticate(session=_session(username, password)))
        return result

    for rule in rules:
        assert authenticate(rule.username, rule.password) is True
    assert authenticate("A", password_for(SECRET, "B")) is False
    assert authenticate("A", "") is False
    assert authenticate("mallory", password_for(SECRET, "A")) is False
    assert not authenticate(None, None)  # anonymous: no answer from this plugin, so the broker refuses


def test_amqtt_topic_rules() -> None:
    publish_acl, subscribe_acl = amqtt_acls(_rules())
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The 'acl' option is deprecated", DeprecationWarning)
        plugin = TopicAccessControlListPlugin(
            _context(TopicAccessControlListPlugin.Config(publish_acl=publish_acl, acl=subscribe_acl))
        )

    def allowed(user: str, action: Action, topic: str) -> bool:
        return bool(asyncio.run(plugin.topic_filtering(session=_session(user, "x"), topic=topic, action=action)))

    for topic in ("meters/A/reading", "meters/A/readings", "meters/A/status"):
        assert allowed("A", Action.PUBLISH, topic)
    for topic in ("meters/B/reading", "meters/A/agg/60s", "meters/A/cmd/replay", "homeassistant/status", "other"):
        assert not allowed("A", Action.PUBLISH, topic), topic
    assert allowed("A", Action.SUBSCRIBE, "meters/A/cmd/replay")
    for topic in ("meters/#", "meters/+/cmd/replay", "meters/B/cmd/#", "#", "meters/A/#"):
        assert not allowed("A", Action.SUBSCRIBE, topic), topic
    for topic in ("meters/A/agg/60s", "meters/B/cmd/replay", "homeassistant/device/A/config"):
        assert allowed("bridge", Action.PUBLISH, topic)
    assert not allowed("bridge", Action.PUBLISH, "meters/A/reading")
    assert allowed("bridge", Action.SUBSCRIBE, "meters/+/reading")
    assert allowed("bridge", Action.PUBLISH, "bridges/fleet-bridge/probe")  # its session's liveness probe
    assert allowed("bridge", Action.SUBSCRIBE, "bridges/fleet-bridge/probe")
    assert not allowed("A", Action.PUBLISH, "bridges/fleet-bridge/probe")
    assert not allowed("observer", Action.SUBSCRIBE, "bridges/#")
    assert allowed("bridge", Action.PUBLISH, "bridges/fleet/status")  # its availability (config.topics)
    for user in ("homeassistant", "observer"):
        assert allowed(user, Action.SUBSCRIBE, "bridges/fleet/status")
        assert allowed(user, Action.SUBSCRIBE, "bridges/+/status")
        assert not allowed(user, Action.SUBSCRIBE, "bridges/fleet-bridge/probe")
        assert not allowed(user, Action.PUBLISH, "bridges/fleet/status")
    assert allowed("homeassistant", Action.PUBLISH, "homeassistant/status")
    assert not allowed("homeassistant", Action.PUBLISH, "meters/A/agg/60s")
    assert not allowed("observer", Action.PUBLISH, "meters/A/reading")
    assert allowed("observer", Action.SUBSCRIBE, "meters/#")
    assert not allowed("mallory", Action.SUBSCRIBE, "meters/#")


def test_amqtt_accepts_the_generated_config(tmp_path: Path) -> None:
    """amqtt parses the config strictly (a misnamed plugin option aborts): build a broker from it, without starting."""
    rules = _rules()
    path = tmp_path / "passwords"
    path.write_text(amqtt_password_file(rules, [bytes(16)] * len(rules)))
    publish_acl, subscribe_acl = amqtt_acls(rules)
    config = amqtt_config("127.0.0.1", 1883, AmqttAuth(str(path), publish_acl, subscribe_acl))

    async def build() -> int:
        broker = make_broker(config)
        return len(broker.plugins_manager._auth_plugins) + len(broker.plugins_manager._topic_plugins)

    assert asyncio.run(build()) == 3  # password file, client ids, topic rules
    assert amqtt_config("127.0.0.1", 1883)["plugins"] == {
        "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
    }
    tls = amqtt_config("127.0.0.1", 8883, tls=("c.pem", "k.pem"))["listeners"]["default"]
    assert (tls["ssl"], tls["certfile"], tls["keyfile"]) == (True, "c.pem", "k.pem")
