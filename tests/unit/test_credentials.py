"""Fleet credentials: derived passwords, the rules, and each broker's rendering of them, checked with amqtt's own
plugins (Mosquitto's renderings are checked by the real Mosquitto in every integration test that runs it)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
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
from broker.embedded import make_broker
from config.credentials import (
    MOSQUITTO_ITERATIONS,
    SERVICE_USERS,
    Rule,
    amqtt_acls,
    amqtt_password_file,
    check_meter_ids,
    fleet_rules,
    meter_password,
    mosquitto_acl_file,
    mosquitto_hash,
    mosquitto_password_file,
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
    assert rules["observer"].publish == ()
    assert "password" not in repr(rules["A"])
    assert rules["A"].password not in repr(rules["A"])


def test_mosquitto_hash_is_pbkdf2_sha512_as_mosquitto_passwd_writes_it() -> None:
    salt = b"0123456789ab"
    text = mosquitto_hash("secret", salt)
    match = re.fullmatch(r"\$7\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)", text)
    assert match is not None, text
    assert int(match[1]) == MOSQUITTO_ITERATIONS
    assert base64.b64decode(match[2]) == salt
    assert base64.b64decode(match[3]) == hashlib.pbkdf2_hmac("sha512", b"secret", salt, MOSQUITTO_ITERATIONS)


def test_mosquitto_files() -> None:
    rules = _rules()
    passwords = mosquitto_password_file(rules, [bytes(12)] * len(rules)).splitlines()
    assert [line.split(":", 1)[0] for line in passwords] == [rule.username for rule in rules]
    acl = mosquitto_acl_file(rules)
    block = acl.split("user A\n", 1)[1].split("\n\n", 1)[0]
    assert block.splitlines() == ["topic write meters/A/+", "topic read meters/A/cmd/#"]
    assert "topic readwrite homeassistant/#" in acl.split("user bridge\n", 1)[1].split("\n\n", 1)[0]
    assert not [line for line in acl.split("user ", 1)[0].splitlines() if line.startswith("topic")]  # anonymous: none
    with pytest.raises(ValueError, match="zip"):
        mosquitto_password_file(rules, [bytes(12)])


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

    assert asyncio.run(build()) == 2
    assert amqtt_config("127.0.0.1", 1883)["plugins"] == {
        "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
    }
    tls = amqtt_config("127.0.0.1", 8883, tls=("c.pem", "k.pem"))["listeners"]["default"]
    assert (tls["ssl"], tls["certfile"], tls["keyfile"]) == (True, "c.pem", "k.pem")
