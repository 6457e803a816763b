"""The MQTT shell of the bridge: one paho client, subscribed (again on every connect) to readings and status.

paho's message is turned into ``(topic, bytes)`` at the edge; nothing past ``_on_message`` sees paho. Callbacks never
raise: an exception in a paho callback would kill its network thread.
"""

from __future__ import annotations

import logging
import secrets

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from bridge.ingest import Ingest
from config.settings import BrokerAddress
from config.wire import READING_QOS, READING_SUBSCRIPTION, STATUS_QOS, STATUS_SUBSCRIPTION

log = logging.getLogger(__name__)

KEEPALIVE_S = 30


class Subscriber:
    """Connects to the broker in the background and feeds every message to ``ingest``."""

    def __init__(self, broker: BrokerAddress, ingest: Ingest) -> None:
        self.broker = broker
        self.ingest = ingest
        self.connected = False
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"fleet-bridge-{secrets.token_hex(4)}",
            clean_session=True,
            protocol=mqtt.MQTTv311,
        )
        if broker.username:
            client.username_pw_set(broker.username, broker.password)
        client.reconnect_delay_set(min_delay=1, max_delay=10)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self.client = client

    def start(self) -> None:
        """Connect asynchronously and start paho's network thread (it retries until the broker is there)."""
        self.client.connect_async(self.broker.host, self.broker.port, KEEPALIVE_S)
        self.client.loop_start()

    def stop(self) -> None:
        """Disconnect and stop the network thread."""
        self.connected = False  # a disconnect we asked for is not worth a warning
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        try:
            if reason.is_failure:
                log.warning("broker %s refused the bridge: %s", self.broker.url(), reason)
                return
            self.connected = True
            # Subscribing here restores the subscriptions after every reconnect.
            client.subscribe([(READING_SUBSCRIPTION, READING_QOS), (STATUS_SUBSCRIPTION, STATUS_QOS)])
            log.info("bridge connected to %s", self.broker.url())
        except Exception:
            log.exception("error in on_connect")

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if self.connected:
            log.warning("bridge disconnected from %s: %s", self.broker.url(), reason)
        self.connected = False

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        try:
            topic = message.topic
        except UnicodeDecodeError:
            topic = "<undecodable topic>"
        try:
            self.ingest.handle(topic, bytes(message.payload))
        except Exception:  # Ingest.handle does not raise; this is the last line of defence for the thread
            log.exception("error handling a message")
