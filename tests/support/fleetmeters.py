"""One simulator process running a fleet of N meters (``python -m simulator run --fleet N``), for tests.

The meters are the fleet members ``A-0001``, ``B-0001``, ``C-0001``, ``A-0002``, ... spread round-robin over the
households, exactly as ``python -m simulator generate --fleet N`` names them; brokers started for them must let those
ids in (``start_broker(..., meters=fleet_ids(N))``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from simulator.live.outbox import Outbox
from simulator.live.reproduce import Reproducer, resume
from simulator.meters.fleet import fleet_specs
from tests.support.procs import Proc, start_meters

HOUSEHOLDS = ("A", "B", "C")


def fleet_ids(size: int, households: Sequence[str] = HOUSEHOLDS) -> list[str]:
    """The meter ids of a fleet of ``size`` members over ``households``."""
    return [spec.meter_id for spec in fleet_specs(households, size)]


def start_fleet_meters(
    broker_port: int, size: int, log_dir: Path, *, speed: float = 1.0, seed: int = 1, profile: str = "classic"
) -> Proc:
    """Start one simulator process running the ``fleet_ids(size)`` meters (classic profile unless told)."""
    return start_meters(
        broker_port,
        HOUSEHOLDS,
        log_dir,
        speed=speed,
        seed=seed,
        profile=profile,
        extra=["--fleet", str(size)],
        name=f"meters-fleet-{size}",
    )


def outbox_bounds(meter_dir: Path) -> dict[str, tuple[int, int, int]]:
    """Per meter, from the outbox of a simulator run in ``meter_dir`` (stopped): its last seq, and the seconds of its
    first and last readings, reproduced from the outbox's checkpoints as the meter would send them again."""
    outbox = Outbox(meter_dir / "data")
    try:
        bounds = {}
        reproducer = Reproducer(outbox)
        for meter, state in ((m, r.state) for m, r in resume(outbox, outbox.meters()).items()):
            if state.seq == 0:
                continue
            first = reproducer.readings(meter, 0, 0)
            last = reproducer.readings(meter, state.seq - 1, state.seq - 1)
            if first and last:
                bounds[meter] = (state.seq - 1, first[0].ts, last[0].ts)
        return bounds
    finally:
        outbox.close()
