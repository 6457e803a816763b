"""amqtt broker configuration, generated from settings (pure: returns a dict, starts nothing).

Uses amqtt's ``plugins`` form. Bound to loopback unless a host is given: amqtt itself would bind 0.0.0.0.

With authentication (the default), amqtt's ``FileAuthPlugin`` checks user names and passwords against a password file
(argon2id hashes, ``config.credentials.amqtt_password_file``), ``broker.client_ids.ClientIdPlugin`` binds client ids
to users (``config.credentials.client_id_refusal``), and amqtt's ``TopicAccessControlListPlugin`` applies the
fleet's rules (``config.credentials.amqtt_acls``). amqtt 0.12 quirk: that plugin's config takes ``publish_acl`` and
``acl`` (the subscribe rules; ``subscribe_acl``, which its docs name, makes the broker refuse the config), and without
``acl`` it refuses every subscription.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FILE_AUTH_PLUGIN = "amqtt.plugins.authentication.FileAuthPlugin"
ANONYMOUS_AUTH_PLUGIN = "amqtt.plugins.authentication.AnonymousAuthPlugin"
TOPIC_ACL_PLUGIN = "amqtt.plugins.topic_checking.TopicAccessControlListPlugin"
CLIENT_ID_PLUGIN = "broker.client_ids.ClientIdPlugin"


@dataclass(frozen=True, slots=True)
class AmqttAuth:
    """Where the password file is, and the user -> topic filters maps of publishing and subscribing."""

    password_file: str
    publish_acl: dict[str, list[str]]
    subscribe_acl: dict[str, list[str]]


def amqtt_config(
    host: str, port: int, auth: AmqttAuth | None = None, tls: tuple[str, str] | None = None
) -> dict[str, Any]:
    """Config dict for ``amqtt.broker.Broker``: one TCP listener on ``host:port`` (TLS with ``tls`` = (certificate
    file, key file)); with ``auth`` only its users get in, under its ACLs, without it anonymous clients are allowed."""
    listener: dict[str, Any] = {"type": "tcp", "bind": f"{host}:{port}", "max_connections": 0}
    if tls is not None:
        listener.update(ssl=True, certfile=tls[0], keyfile=tls[1])
    plugins: dict[str, Any]
    if auth is None:
        plugins = {ANONYMOUS_AUTH_PLUGIN: {"allow_anonymous": True}}
    else:
        plugins = {
            FILE_AUTH_PLUGIN: {"password_file": auth.password_file},
            CLIENT_ID_PLUGIN: {},
            TOPIC_ACL_PLUGIN: {"publish_acl": auth.publish_acl, "acl": auth.subscribe_acl},
        }
    return {"listeners": {"default": listener}, "plugins": plugins}
