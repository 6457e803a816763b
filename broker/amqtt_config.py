"""amqtt broker configuration, generated from settings (pure: returns a dict, starts nothing).

Uses amqtt's ``plugins`` form. Bound to loopback unless a host is given: amqtt itself would bind 0.0.0.0.
"""

from __future__ import annotations

from typing import Any


def amqtt_config(host: str, port: int) -> dict[str, Any]:
    """Config dict for ``amqtt.broker.Broker``: one TCP listener on ``host:port``, anonymous clients allowed."""
    return {
        "listeners": {
            "default": {
                "type": "tcp",
                "bind": f"{host}:{port}",
                "max_connections": 0,
            },
        },
        "plugins": {
            "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
        },
    }
