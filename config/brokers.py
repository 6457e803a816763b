"""Broker addresses: where an MQTT client connects, and how (TLS, login), parsed from ``mqtt[s]://`` URLs or a list
of them to fail over between."""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Final
from urllib.parse import unquote, urlsplit

from config.errors import ConfigError
from config.shard import shard_of

DEFAULT_MQTT_PORT: Final = 1883
DEFAULT_MQTTS_PORT: Final = 8883


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where an MQTT client connects, and how: TLS (trusting ``tls_ca``, or the system's CAs if None) and either the
    URL's own user name and password or passwords derived from the fleet ``secret``.

    ``fallbacks``: the other brokers of a list (``FLEET_BROKER=url1,url2,...``), each a plain address (no fallbacks of
    its own), all with this one's scheme. This address is the list's first; ``url()``, ``host`` and ``port`` are
    its own, so code that needs "the" broker keeps working; ``addresses()`` is the whole list."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False
    tls_ca: str | None = None
    secret: bytes | None = field(default=None, repr=False)
    fallbacks: tuple[BrokerAddress, ...] = ()

    def __post_init__(self) -> None:
        for other in self.fallbacks:
            if other.fallbacks:
                raise ValueError("a fallback broker has no fallbacks of its own")
            if other.tls != self.tls:
                raise ValueError("every broker of a list uses the same scheme")

    def addresses(self) -> tuple[BrokerAddress, ...]:
        """Every broker of the list, this one first, each without fallbacks."""
        return (replace(self, fallbacks=()) if self.fallbacks else self, *self.fallbacks)

    def each(self, change: Callable[[BrokerAddress], BrokerAddress]) -> BrokerAddress:
        """The list with ``change`` applied to every address of it (TLS, the fleet secret)."""
        first, *rest = (change(address) for address in self.addresses())
        return replace(first, fallbacks=tuple(rest))

    def urls(self) -> str:
        """Every broker's ``url()``, comma-separated (for logs)."""
        return ",".join(address.url() for address in self.addresses())

    def order_for(self, client_id: str) -> tuple[BrokerAddress, ...]:
        """The brokers in the order client ``client_id`` tries them (round robin from the first): its first is
        ``shard_of(client_id, n)``, the rest a permutation seeded by the same CRC-32, so that the clients of a dead
        broker spread over the others by their ids instead of all moving to the one after it."""
        addresses = self.addresses()
        first = shard_of(client_id, len(addresses))
        rest = [address for index, address in enumerate(addresses) if index != first]
        random.Random(zlib.crc32(client_id.encode("utf-8"))).shuffle(rest)  # seeded: the same on every run
        return (addresses[first], *rest)

    def url(self) -> str:
        """The address as an ``mqtt://`` (``mqtts://`` with TLS) URL without the password."""
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"

    def login(self, user: str) -> tuple[str, str | None] | None:
        """User name and password for client ``user`` (a meter id, or bridge/homeassistant/observer): the URL's
        own if it has a user name, else derived from the fleet secret; None to connect anonymously."""
        if self.username:
            return self.username, self.password
        if self.secret is not None:
            # Imported here: the hashing libraries (bcrypt, argon2) only matter to a client that logs in, not to
            # every user of the settings (`python -m simulator generate`).
            from config.credentials import password_for

            return user, password_for(self.secret, user)
        return None


def parse_broker_url(text: str, key: str = "FLEET_BROKER") -> BrokerAddress:
    """Parse ``mqtt://[user:pass@]host[:port]`` (``mqtts://`` for TLS, default port 8883)."""
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(key, f"not a broker URL: {text!r} ({exc})") from exc
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ConfigError(key, f"scheme must be mqtt:// or mqtts:// (got {text!r})")
    if not parts.hostname:
        raise ConfigError(key, f"no host in {text!r}")
    if port is not None and not 1 <= port <= 65535:
        raise ConfigError(key, f"port must be 1-65535 in {text!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(key, f"unexpected path or query in {text!r}")
    tls = parts.scheme == "mqtts"
    return BrokerAddress(
        host=parts.hostname,
        port=port if port is not None else DEFAULT_MQTTS_PORT if tls else DEFAULT_MQTT_PORT,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls=tls,
    )


def parse_broker_urls(text: str, key: str = "FLEET_BROKER") -> BrokerAddress:
    """A comma-separated list of broker URLs (``parse_broker_url`` each, one scheme for all, repeats dropped): the
    first, with the others as its ``fallbacks``. One URL is that URL's address, exactly."""
    entries = [entry.strip() for entry in text.split(",")]
    addresses: list[BrokerAddress] = []
    for position, entry in enumerate(entries, 1):
        if not entry:
            raise ConfigError(key, f"entry {position} of {len(entries)} is empty in {text!r}")
        address = parse_broker_url(entry, key)
        if addresses and address.tls != addresses[0].tls:
            raise ConfigError(key, f"{entry!r} does not use the scheme of {entries[0]!r}: one scheme for every broker")
        if address not in addresses:  # a repeat collapses into its first mention
            addresses.append(address)
    first, *rest = addresses
    return replace(first, fallbacks=tuple(rest))
