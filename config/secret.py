"""The fleet secret file (I/O shell of ``config.credentials``): created once, then read by every process.

The file (``FLEET_MQTT_SECRET``, default ``<FLEET_DATA_DIR>/mqtt-secret``) holds 32 random bytes as 64 hex digits,
mode 0600. It never belongs in git (``data/`` is ignored). Several processes may start at once (``make up``): each
writes a complete file under a temporary name and hard-links it to the final name, which fails if the name exists, so
exactly one wins, nobody ever reads a half-written secret, and the losers read the winner's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
from pathlib import Path

from config.credentials import SECRET_BYTES, bridge_client_id
from config.errors import ConfigError
from config.settings import DEFAULT_BRIDGE_ID, BrokerAddress, Settings, parse_broker_urls

SECRET_KEY = "FLEET_MQTT_SECRET"


def read_secret(path: Path) -> bytes:
    """The secret in ``path``; FileNotFoundError if there is none, ConfigError if the file is not a secret."""
    text = path.read_text(encoding="ascii", errors="replace").strip()
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        secret = b""
    if len(secret) != SECRET_BYTES:
        raise ConfigError(SECRET_KEY, f"{path} does not hold {SECRET_BYTES * 2} hex digits")
    return secret


def load_or_create_secret(path: Path) -> bytes:
    """The secret in ``path``, made first (mode 0600, parent directories too) if there is none."""
    with contextlib.suppress(FileNotFoundError):
        return read_secret(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as file:
            file.write(secrets.token_bytes(SECRET_BYTES).hex() + "\n")
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileExistsError):  # another process won the race: read its secret
            os.link(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return read_secret(path)


def secret_path(settings: Settings) -> Path:
    """Where the fleet secret is: ``FLEET_MQTT_SECRET``, else ``<FLEET_DATA_DIR>/mqtt-secret``."""
    return Path(settings.mqtt_secret) if settings.mqtt_secret else Path(settings.data_dir) / "mqtt-secret"


def client_broker(settings: Settings, url: str | None = None, key: str = "--broker") -> BrokerAddress:
    """Where and how a meter or the bridge connects: ``url`` (a command-line option: one URL or a comma-separated
    list) or the settings' broker(s), with ``FLEET_MQTT_TLS_CA`` applied to every broker of the list and the fleet
    secret attached to each whose URL has no user name of its own (none if ``FLEET_MQTT_ANONYMOUS`` is true)."""
    broker = settings.broker if url is None else parse_broker_urls(url, key)
    tls_ca = settings.mqtt_tls_ca
    if tls_ca:
        broker = broker.each(lambda address: dataclasses.replace(address, tls=True, tls_ca=tls_ca))
    if settings.mqtt_anonymous or all(address.username for address in broker.addresses()):
        return broker
    secret = load_or_create_secret(secret_path(settings))
    return broker.each(lambda address: address if address.username else dataclasses.replace(address, secret=secret))


def bridge_settings(settings: Settings, url: str | None = None, key: str = "--broker") -> Settings:
    """The bridge's settings as it connects: its broker (``client_broker``) and its client id, ``FLEET_BRIDGE_ID`` if
    set, else derived from the fleet secret (``config.credentials.bridge_client_id``), else (no secret: anonymous, or
    the URL's own login) ``bridge-fleet``. The one place the bridge's id is decided."""
    broker = client_broker(settings, url, key)
    bridge_id = settings.bridge_id
    if not bridge_id:
        secret = next((address.secret for address in broker.addresses() if address.secret is not None), None)
        bridge_id = DEFAULT_BRIDGE_ID if secret is None else bridge_client_id(secret)
    return dataclasses.replace(settings, broker=broker, bridge_id=bridge_id)
