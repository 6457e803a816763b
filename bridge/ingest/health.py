"""When the bridge is healthy, and when its MQTT session is dead (pure: times and bounds in, decisions out).

Every time here is wall time in seconds (epoch seconds from the caller's clock); every age is ``now - then``.

Two questions, two answers:

- ``SessionWatch``: connected, yet is the session alive? The subscriber publishes a QoS 1 probe to its own
  topic every ``PROBE_PERIOD_S``; a live session delivers it back. Nothing at all delivered (readings, status, probe)
  for ``DEAD_AFTER_S`` since the later of the connection and the last message means dead: force a reconnect. A forced
  reconnect that brought nothing doubles the bound for the next (up to ``MAX_DEAD_AFTER_S``), so a broker that never
  delivers the probe (an ACL without ``bridges/#``) costs a reconnect every few minutes, not every few seconds.
- ``degraded_reasons``: what ``/healthz`` reports. Degraded when (a) meters say they are online but no reading from
  any of them arrived for ``HealthBounds.quiet_s``, (b) the session delivered nothing for that long, or (c) MQTT has
  been disconnected for longer than ``HealthBounds.disconnected_s``. ``quiet_s`` is ``max(QUIET_FLOOR_S,
  QUIET_PERIODS`` reading periods), a reading period being ``1 / FLEET_SPEED`` wall seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

PROBE_PERIOD_S: Final = 2.0  # the subscriber's probe (and watchdog pass) period
DEAD_PERIODS: Final = 3  # probes that may go missing before a session is dead ...
DEAD_MARGIN_S: Final = 1.0  # ... plus this, for a probe in flight on a loaded machine
DEAD_AFTER_S: Final = DEAD_PERIODS * PROBE_PERIOD_S + DEAD_MARGIN_S  # 7 s
MAX_DEAD_AFTER_S: Final = 300.0  # the bound's ceiling after forced reconnects that brought nothing
QUIET_PERIODS: Final = 10  # reading periods of silence from every online meter before /healthz is degraded ...
QUIET_FLOOR_S: Final = 10.0  # ... but never fewer wall seconds than this
DISCONNECTED_S: Final = 5.0  # disconnected this long: degraded (its reconnect back-off is 1 to 10 s)


@dataclass(frozen=True, slots=True)
class HealthBounds:
    """How long a silence or a disconnection may last before ``/healthz`` says degraded (wall seconds)."""

    quiet_s: float = QUIET_FLOOR_S
    disconnected_s: float = DISCONNECTED_S

    def __post_init__(self) -> None:
        for name in ("quiet_s", "disconnected_s"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")

    @classmethod
    def for_speed(cls, speed: float) -> HealthBounds:
        """The bounds of a fleet at ``speed`` simulated seconds per wall second (a reading every ``1/speed`` s)."""
        if not (math.isfinite(speed) and speed > 0):
            raise ValueError(f"speed must be a positive number, not {speed!r}")
        return cls(quiet_s=max(QUIET_FLOOR_S, QUIET_PERIODS / speed))


@dataclass(frozen=True, slots=True)
class HealthSignals:
    """What ``/healthz`` decides on, as ages in wall seconds at one instant."""

    online_meters: int  # meters whose retained status says online
    online_quiet_s: float  # since a reading of any online meter arrived (or a status arrived, or the bridge started)
    last_message_age_s: float | None  # since the session delivered anything; None: the bridge has no MQTT at all
    disconnected_s: float | None  # how long the connection has been down; None while connected or without MQTT


def degraded_reasons(signals: HealthSignals, bounds: HealthBounds) -> list[str]:
    """Why the bridge is degraded, one short sentence each; empty when it is healthy."""
    reasons = []
    if signals.online_meters > 0 and signals.online_quiet_s > bounds.quiet_s:
        count = signals.online_meters
        which = "the online meter" if count == 1 else f"any of the {count} online meters"
        reasons.append(f"no reading from {which} for {signals.online_quiet_s:.0f} s (bound {bounds.quiet_s:g} s)")
    age = signals.last_message_age_s
    if age is not None and age > bounds.quiet_s:
        reasons.append(f"the MQTT session delivered nothing for {age:.0f} s (bound {bounds.quiet_s:g} s)")
    down = signals.disconnected_s
    if down is not None and down > bounds.disconnected_s:
        reasons.append(f"disconnected from the MQTT broker for {down:.0f} s (bound {bounds.disconnected_s:g} s)")
    return reasons


class SessionWatch:
    """Decides when a connected session is dead, and counts the reconnects that decision forced.

    Not thread-safe: one watchdog thread calls ``check``; ``silent`` only reads.
    """

    def __init__(self, dead_after_s: float = DEAD_AFTER_S, max_dead_after_s: float = MAX_DEAD_AFTER_S) -> None:
        if not (0 < dead_after_s <= max_dead_after_s):
            raise ValueError(f"need 0 < dead_after_s <= max_dead_after_s, not {dead_after_s}, {max_dead_after_s}")
        self.dead_after_s = dead_after_s
        self.max_dead_after_s = max_dead_after_s
        self.forced = 0  # reconnects forced so far
        self._fruitless = 0  # forced reconnects in a row after which nothing was delivered
        self._forced_at: float | None = None

    def bound_s(self) -> float:
        """The current silence bound: ``dead_after_s``, doubled per fruitless forced reconnect, capped."""
        return min(self.dead_after_s * (1 << self._fruitless), self.max_dead_after_s)

    def silent(self, now_s: float, connected_since_s: float | None, last_message_s: float | None) -> bool:
        """Whether a connected session has delivered nothing for longer than the bound (False while disconnected)."""
        if connected_since_s is None:
            return False
        quiet_from = max(connected_since_s, last_message_s or connected_since_s, self._forced_at or connected_since_s)
        return now_s - quiet_from > self.bound_s()

    def check(self, now_s: float, connected_since_s: float | None, last_message_s: float | None) -> bool:
        """One watchdog pass: True (and counted) when a reconnect must be forced now."""
        forced_at = self._forced_at
        if forced_at is not None and last_message_s is not None and last_message_s > forced_at:
            self._fruitless = 0  # the last forced reconnect helped
        if not self.silent(now_s, connected_since_s, last_message_s):
            return False
        nothing_since_forced = forced_at is not None and (last_message_s is None or last_message_s <= forced_at)
        if nothing_since_forced and self.bound_s() < self.max_dead_after_s:
            self._fruitless += 1
        self._forced_at = now_s
        self.forced += 1
        return True
