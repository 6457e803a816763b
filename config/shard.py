"""Static partitioning of the fleet over several bridge instances (pure: no I/O).

``FLEET_SHARD=k/n`` makes a bridge instance own the meters whose stable hash is ``k`` modulo ``n``: the CRC-32 of the
meter id's UTF-8 bytes (``zlib.crc32``, the same on every machine and Python version; never Python's ``hash()``,
which is randomized per process). Every meter belongs to exactly one of the ``n`` shards ``0/n`` ... ``(n-1)/n``, so
``n`` instances with the same ``FLEET_HOUSEHOLDS`` and ``n`` different shards split it without overlap or gap.

Why not MQTT shared subscriptions (``$share/<group>/<filter>``): Mosquitto 2 hands each message to one member of the
group in turn, not by meter, so one meter's readings would be spread over every instance, and the bridge keeps
per-meter state (dedup by second, seq gaps, windows, statistics) that must live in one place.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from config.errors import ConfigError

MAX_SHARDS: Final = 1024
_SHARD_RE: Final = re.compile(r"([0-9]{1,4})/([0-9]{1,4})")


def shard_of(meter_id: str, count: int) -> int:
    """The shard (0..count-1) that owns ``meter_id`` among ``count``: CRC-32 of its UTF-8 bytes, modulo ``count``."""
    return zlib.crc32(meter_id.encode("utf-8")) % count


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard ``index`` of ``count``: owns the meters with ``shard_of(meter, count) == index``."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_SHARDS:
            raise ValueError(f"a shard count is 1-{MAX_SHARDS}, not {self.count}")
        if not 0 <= self.index < self.count:
            raise ValueError(f"a shard index is 0-{self.count - 1}, not {self.index}")

    def owns(self, meter_id: str) -> bool:
        """Whether this shard owns ``meter_id``."""
        return shard_of(meter_id, self.count) == self.index

    def owned(self, meter_ids: Iterable[str]) -> tuple[str, ...]:
        """The ids of ``meter_ids`` this shard owns, in their order."""
        return tuple(meter_id for meter_id in meter_ids if self.owns(meter_id))

    @property
    def name(self) -> str:
        """The name of the bridge instance of this shard, as a topic level: ``shard-<k>-of-<n>``."""
        return f"shard-{self.index}-of-{self.count}"

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str, key: str = "FLEET_SHARD") -> Shard:
    """``k/n``: shard ``k`` (0-based) of ``n``, with ``0 <= k < n <= MAX_SHARDS``."""
    match = _SHARD_RE.fullmatch(text.strip())
    if match is None:
        raise ConfigError(key, f"expected k/n such as 0/2 (shard k of n, k from 0), got {text!r}")
    try:
        return Shard(int(match.group(1)), int(match.group(2)))
    except ValueError as exc:
        raise ConfigError(key, str(exc)) from exc
