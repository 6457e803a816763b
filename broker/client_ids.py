"""amqtt auth plugin binding client ids to users (``config.credentials.client_id_refusal``).

Loaded beside amqtt's ``FileAuthPlugin`` (``broker.amqtt_config``): amqtt lets a client in only if every auth plugin
that answers says yes, so a right password with another client's id is refused (CONNACK 5). ``broker.embedded``
asks the plugins before amqtt touches the session of that id, so its owner is never disconnected.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from amqtt.plugins.base import BaseAuthPlugin

from config.credentials import client_id_refusal

log = logging.getLogger("broker")


class ClientIdPlugin(BaseAuthPlugin):  # type: ignore[misc]
    """Refuses a login whose client id is not one its user may take."""

    @dataclass
    class Config:
        """No options: the rules are the fleet's (``config.credentials``)."""

    async def authenticate(self, *, session: Any) -> bool:
        """False (and a warning naming user and id) if the session's user may not use its client id; never raises."""
        try:
            refusal = client_id_refusal(session.username, session.client_id)
        except Exception:  # an auth plugin must answer, never raise
            log.exception("client id check failed")
            return False
        if refusal is not None:
            log.warning("refused client id %r of user %r: %s", session.client_id, session.username, refusal)
            return False
        return True
