"""Where a run of the live meters starts (pure: the wall-clock start, the outbox's states and the settings are
arguments): the outbox's retention, the warm-up of fresh meters and the resume point of meters the outbox knows.

Times are simulated epoch seconds. A meter the outbox knows continues at its next second (``MeterState.next_ts``),
never back in time, and gets no warm-up; a fresh meter begins ``warmup_s`` in the past (the loop catches up, oldest
first, then runs live), its warm-up held ``WARMUP_HOLD_S`` wall seconds so that a bridge started with it hears it all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from config.errors import ConfigError
from config.settings import DEFAULT_WARMUP_S, MAX_WARMUP_S, Settings, parse_duration
from simulator.live.checkpoint import DEFAULT_RETENTION_S, FLEET_MODE_RETENTION_S, HORIZON_LEAD_S, MAX_RETENTION_S
from simulator.meters.meter import MeterState

# A first start's warm-up waits this long (wall seconds) before it goes out, so that a bridge started with the meters
# (`make up`, compose: about 1-2 s to subscribe) hears it from its oldest reading.
WARMUP_HOLD_S: Final = 5.0


def outbox_retention(text: str | None, fleet: bool) -> int:
    """The outbox's retention in simulated seconds: ``--outbox-retention``, else a week (an hour with ``--fleet``)."""
    if text is None:
        return DEFAULT_RETENTION_S if not fleet else FLEET_MODE_RETENTION_S
    retention_s = parse_duration(text, "--outbox-retention", high_s=MAX_RETENTION_S)
    if retention_s < 1:
        raise ConfigError("--outbox-retention", "must be at least 1 s")
    return retention_s


def warmup_seconds(text: str | None, settings: Settings, fleet: bool, retention_s: int) -> int:
    """The warm-up of fresh meters, in seconds: ``--warmup``, else ``FLEET_WARMUP``, else ``DEFAULT_WARMUP_S`` (0 with
    ``--fleet``: a fleet's outbox keeps an hour by default, and a day of thousands of meters is not a quick start).
    Refused if longer than the outbox's retention: the past it publishes must be reproducible for replays, never
    silently cut."""
    if text is not None:
        key, warmup_s = "--warmup", parse_duration(text, "--warmup", high_s=MAX_WARMUP_S)
    elif settings.warmup_s is not None:
        key, warmup_s = "FLEET_WARMUP", settings.warmup_s
    else:
        key, warmup_s = "FLEET_WARMUP", 0 if fleet else DEFAULT_WARMUP_S
    if warmup_s > retention_s:
        given = "" if text is not None or settings.warmup_s is not None else " (the default)"
        raise ConfigError(
            key,
            f"a warm-up of {warmup_s} s{given} is longer than the outbox's retention of {retention_s} s "
            f"(--outbox-retention): what a meter publishes must stay reproducible for the bridge's replays. Give "
            f"{key} at most {retention_s} s (0: no warm-up), or --outbox-retention at least {warmup_s} s",
        )
    return warmup_s


@dataclass(frozen=True, slots=True)
class StartPlan:
    """Where a run starts: the clock's simulated origin, where the meters on record resume, and the warm-up."""

    sim_start: float  # the simulation clock's origin (simulated epoch seconds)
    resume_at: int  # the latest next second of the meters on record (0: none is)
    fresh: tuple[str, ...]  # the meters the outbox does not know, in the run's order
    warmup_s: int  # how far before ``sim_start`` the fresh meters begin (0: no warm-up)
    hold_s: float  # wall seconds the warm-up waits before it goes out (0.0 without one)

    @property
    def resuming(self) -> bool:
        """Whether a meter on record continues at or after the clock's first second (the run resumes a past one)."""
        return self.resume_at > self.sim_start - 1

    @property
    def warmup_start(self) -> float:
        """Where the fresh meters begin (``sim_start`` without a warm-up)."""
        return self.sim_start - self.warmup_s


def plan_start(
    sim_start: float, speed: float, meter_ids: Sequence[str], lasts: Mapping[str, MeterState], warmup_s: int
) -> StartPlan:
    """The start of a run of ``meter_ids`` whose clock would begin at ``sim_start``, the outbox holding ``lasts``
    (each known meter's state after everything its last run may have published).

    A meter never goes back in time: it continues at its next second, whatever the clock says. The clock itself
    starts there too if that is further ahead than the horizon's lead (a restart with the same --start); within the
    lead (a restart at speed 1 right after a kill) it keeps to the wall clock and the meters wait that long. Only
    fresh meters warm up: a restart never publishes a second warm-up.
    """
    resume_at = max((state.next_ts for state in lasts.values()), default=0)
    if resume_at - HORIZON_LEAD_S * speed > sim_start:
        sim_start = float(resume_at)
    fresh = tuple(meter_id for meter_id in meter_ids if meter_id not in lasts)
    warm_s = warmup_s if fresh else 0
    return StartPlan(sim_start, resume_at, fresh, warm_s, WARMUP_HOLD_S if warm_s else 0.0)
